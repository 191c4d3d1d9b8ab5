/**
 * Where one run of a command writes, and what it knows about its terminal.
 * A command never touches process.stdout or process.exitCode directly: run
 * in this process its Io is the real terminal; run inside a daemon for a
 * client (cli/daemon.ts) its Io streams to that client, whose terminal
 * facts travel with the request. So one definition serves both places.
 */

import type { Terminal } from '../src/index.js'

/** The output side of one command run. */
export class Io implements Terminal {
  /** The exit code the run ends with; commands set it for "ran, but found trouble". */
  exitCode = 0
  readonly stdoutIsTTY: boolean
  readonly stderrIsTTY: boolean
  readonly columns: number | undefined
  readonly debug: boolean

  constructor(
    private readonly writeOut: (text: string) => void,
    private readonly writeErr: (text: string) => void,
    terminal: Terminal,
    /** Aborted when whoever reads this output has gone (a streaming command stops). */
    readonly gone: AbortSignal = new AbortController().signal
  ) {
    this.stdoutIsTTY = terminal.stdoutIsTTY
    this.stderrIsTTY = terminal.stderrIsTTY
    this.columns = terminal.columns
    this.debug = terminal.debug
  }

  /** The terminal facts, as a request to a daemon carries them. */
  get terminal(): Terminal {
    return { stdoutIsTTY: this.stdoutIsTTY, stderrIsTTY: this.stderrIsTTY, columns: this.columns, debug: this.debug }
  }

  /** This process's own stdout and stderr. */
  static process(): Io {
    return new Io((t) => process.stdout.write(t), (t) => process.stderr.write(t), processTerminal())
  }

  /** Raw text to stdout. */
  out(text: string): void {
    this.writeOut(text)
  }

  /** Raw text to stderr. */
  err(text: string): void {
    this.writeErr(text)
  }

  /** One line to stdout. */
  say(line: string): void {
    this.writeOut(line + '\n')
  }

  /** One line to stderr. */
  warn(line: string): void {
    this.writeErr(line + '\n')
  }

  /** A value as indented JSON on stdout. */
  json(value: unknown): void {
    this.writeOut(JSON.stringify(value, null, 2) + '\n')
  }
}

/** This process's terminal. */
function processTerminal(): Terminal {
  return {
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    columns: process.stderr.isTTY === true ? process.stderr.columns : undefined,
    debug: process.env['LEFT_DEBUG'] === '1'
  }
}
