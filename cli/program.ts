/**
 * The `left` program: one commander definition of every command, built for
 * one run in a given Runtime (this process, or inside the daemon for a
 * client). Every failure ends here as one line on stderr and an exit code;
 * stacks only with LEFT_DEBUG=1.
 */
import { Command, CommanderError } from 'commander'
import { registerConflictCommands } from './commands/conflicts.js'
import { registerDaemonCommands } from './commands/daemon.js'
import { registerHistoryCommands } from './commands/history.js'
import { registerLocalCommands } from './commands/local.js'
import { registerNetworkCommands } from './commands/network.js'
import { registerRetentionCommands } from './commands/retention.js'
import type { Runtime } from './context.js'
import { EXIT_USAGE, reportError } from './output.js'

/** Builds the program for one run in `rt`. */
function buildProgram(rt: Runtime): Command {
  const program = new Command('left')
    .description('LEFT: keep a folder identical on several machines and remember every version of it')
    .version('0.1.0')
    .option('-C <dir>', 'run as if started in <dir>')
    .exitOverride()
    .configureOutput({
      writeOut: (str) => rt.io.out(str),
      writeErr: (str) => rt.io.err(str),
      outputError: (str, write) => write(`left: ${str.replace(/^error: /, '').trim()}\n`)
    })
  registerLocalCommands(program, rt)
  registerHistoryCommands(program, rt)
  registerConflictCommands(program, rt)
  registerRetentionCommands(program, rt)
  registerNetworkCommands(program, rt)
  registerDaemonCommands(program, rt)
  for (const cmd of program.commands) {
    cmd.exitOverride()
    cmd.configureOutput({ writeOut: (str) => rt.io.out(str), writeErr: (str) => rt.io.err(str) })
  }
  return program
}

/** Runs the command line `args` (the words after `left`) in `rt`; resolves with the exit code. */
export async function runProgram(rt: Runtime, args: readonly string[]): Promise<number> {
  // Words after `--` are paths, never flags.
  const dash = args.indexOf('--')
  const json = (dash === -1 ? args : args.slice(0, dash)).includes('--json')
  try {
    await buildProgram(rt).parseAsync([...args], { from: 'user' })
    return rt.io.exitCode
  } catch (err) {
    // Help and --version "fail" with exit code 0; real usage errors are already printed.
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0
      if (json) rt.io.json({ error: { code: 'LEFT_USAGE', message: err.message.replace(/^error: /, '') } })
      return EXIT_USAGE
    }
    return reportError(err, rt.io, json)
  }
}
