#!/usr/bin/env node
/** The `left` command: runs the program (cli/program.ts) in this process. */
import { localRuntime } from './context.js'
import { boundHeapGrowth } from './heap.js'
import { Io } from './io.js'
import { runProgram } from './program.js'

// `left log | head` closes the pipe early; that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0)
  throw err
})
boundHeapGrowth()
const args = process.argv.slice(2)
process.exitCode = await runProgram(localRuntime(Io.process(), args), args)
