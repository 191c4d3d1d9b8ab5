#!/usr/bin/env node
/**
 * The `left` command: a commander program whose commands live in
 * cli/commands/. Every failure ends here as one line on stderr and a
 * non-zero exit; stacks only with LEFT_DEBUG=1.
 */
import { Command, CommanderError } from 'commander'
import { registerLocalCommands } from './commands/local.js'
import { registerNetworkCommands } from './commands/network.js'
import { EXIT_USAGE, reportError } from './output.js'

/** Builds the program (exported for tests that want to inspect it). */
export function buildProgram(): Command {
  const program = new Command('left')
    .description('LEFT: keep a folder identical on several machines and remember every version of it')
    .version('0.1.0')
    .option('-C <dir>', 'run as if started in <dir>')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`left: ${str.replace(/^error: /, '').trim()}\n`) })
  registerLocalCommands(program)
  registerNetworkCommands(program)
  for (const cmd of program.commands) cmd.exitOverride()
  return program
}

async function main(): Promise<void> {
  // `left log | head` closes the pipe early; that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0)
    throw err
  })
  try {
    await buildProgram().parseAsync(process.argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version "fail" with exit code 0; real usage errors are already printed.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE
      return
    }
    process.exitCode = reportError(err)
  }
}

await main()
