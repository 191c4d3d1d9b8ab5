#!/usr/bin/env node
/** The `left` command: runs the program (cli/program.ts) in this process. */
import { setFlagsFromString } from 'node:v8'
import { localRuntime } from './context.js'
import { Io } from './io.js'
import { runProgram } from './program.js'

// `left log | head` closes the pipe early; that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0)
  throw err
})
// On a machine with plenty of memory V8 lets its heap grow to four times
// what survived the last full collection before collecting again: a scan
// that holds 90 MB while in a directory of 200,000 files then peaked
// anywhere from 170 to 510 MB of its own memory, depending on when that
// collection came. Twice is the bound LEFT keeps, for about 5% more CPU
// (docs/benchmarks.md, "Memory at a million files"). V8 reads this at each
// collection, so setting it after start takes effect; one given to node
// by hand wins. Node 20, 22 and 24 know the flag; one that did not would
// print two lines on stderr for every command, which a test would catch.
if (!process.execArgv.some((arg) => arg.startsWith('--heap-growing-percent'))) setFlagsFromString('--heap-growing-percent=100')
const args = process.argv.slice(2)
process.exitCode = await runProgram(localRuntime(Io.process(), args), args)
