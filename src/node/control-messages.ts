/**
 * The control protocol's messages, pure: newline-delimited JSON over the
 * daemon's Unix socket (docs/control.md). The daemon greets with `hello`; the
 * client sends one `run`; the daemon streams `stdout`/`stderr` and ends with
 * `exit`, or sends one `error` and closes. Every line is checked here, once,
 * before anything acts on it.
 */
import { LeftError } from '../errors.js'

/** The control protocol version this code speaks. */
export const CONTROL_VERSION = 1

/** Longest line either side accepts, newline excluded. */
export const MAX_CONTROL_LINE = 1024 * 1024

/** The facts about the client's terminal that change what a command prints. */
export interface Terminal {
  readonly stdoutIsTTY: boolean
  readonly stderrIsTTY: boolean
  /** Width of the client's stderr, when it is a terminal. */
  readonly columns: number | undefined
  /** LEFT_DEBUG=1 on the client: errors carry their stack. */
  readonly debug: boolean
}

/** The daemon's greeting, sent as soon as a client connects. */
export interface HelloMessage {
  readonly type: 'hello'
  readonly version: number
  /** The daemon's process id, for "already running (pid N)". */
  readonly pid: number
  /** The folder it holds: the directory that contains `.left/`. */
  readonly root: string
}

/** Run one `left` command inside the daemon. */
export interface RunMessage {
  readonly type: 'run'
  readonly version: number
  /** The arguments after `left`, as typed. */
  readonly argv: readonly string[]
  /** The client's working directory (for `-C` and relative paths). */
  readonly cwd: string
  readonly terminal: Terminal
}

/** Output of the running command. */
export interface OutputMessage {
  readonly type: 'stdout' | 'stderr'
  readonly data: string
}

/** The command finished with this exit code; the daemon closes next. */
export interface ExitMessage {
  readonly type: 'exit'
  readonly code: number
}

/** The request was refused (bad line, wrong version, too slow); the daemon closes next. */
export interface ErrorMessage {
  readonly type: 'error'
  readonly code: string
  readonly message: string
}

export type ServerMessage = HelloMessage | OutputMessage | ExitMessage | ErrorMessage
export type ClientMessage = RunMessage

/** A control-protocol violation: a malformed, oversized or unexpected line. */
export class ControlProtocolError extends LeftError {
  constructor(message: string) {
    super('LEFT_CONTROL', message)
  }
}

/** One message as a line, newline included. */
export function encodeLine(message: ServerMessage | ClientMessage): string {
  return JSON.stringify(message) + '\n'
}

/**
 * Splits a byte stream into lines. Refuses (throws ControlProtocolError) as
 * soon as a line grows past `max` bytes, so a client that never sends a
 * newline cannot make the daemon buffer without end.
 */
export class LineDecoder {
  private pending: Buffer[] = []
  private pendingBytes = 0

  constructor(private readonly max = MAX_CONTROL_LINE) {}

  /** The complete lines in `chunk` (and what came before it), without newlines. */
  push(chunk: Buffer): string[] {
    const lines: string[] = []
    let start = 0
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.pending.push(chunk.subarray(start, nl))
      this.pendingBytes += nl - start
      this.check()
      lines.push(Buffer.concat(this.pending).toString('utf8'))
      this.pending = []
      this.pendingBytes = 0
      start = nl + 1
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start))
      this.pendingBytes += chunk.length - start
      this.check()
    }
    return lines
  }

  private check(): void {
    if (this.pendingBytes > this.max) throw new ControlProtocolError(`control message longer than ${this.max} bytes`)
  }
}

/** Checks a line from a client. */
export function decodeClientLine(line: string): ClientMessage {
  const m = parseObject(line)
  if (m['type'] !== 'run') throw new ControlProtocolError(`expected a run request, not ${JSON.stringify(m['type'])}`)
  if (m['version'] !== CONTROL_VERSION) throw new ControlProtocolError(`unsupported control protocol version ${JSON.stringify(m['version'])}; this daemon speaks ${CONTROL_VERSION}`)
  const argv = m['argv']
  if (!Array.isArray(argv) || argv.length > 4096 || !argv.every((a) => typeof a === 'string')) throw new ControlProtocolError('run.argv must be an array of strings')
  const cwd = m['cwd']
  if (typeof cwd !== 'string' || !cwd.startsWith('/')) throw new ControlProtocolError('run.cwd must be an absolute path')
  const t = m['terminal']
  if (typeof t !== 'object' || t === null) throw new ControlProtocolError('run.terminal must be an object')
  const term = t as Record<string, unknown>
  const columns = term['columns']
  if (typeof term['stdoutIsTTY'] !== 'boolean' || typeof term['stderrIsTTY'] !== 'boolean' || typeof term['debug'] !== 'boolean' ||
    !(columns === undefined || columns === null || (Number.isSafeInteger(columns) && (columns as number) > 0))) {
    throw new ControlProtocolError('run.terminal has missing or mistyped fields')
  }
  return {
    type: 'run', version: CONTROL_VERSION, argv: argv as string[], cwd,
    terminal: { stdoutIsTTY: term['stdoutIsTTY'] as boolean, stderrIsTTY: term['stderrIsTTY'] as boolean, debug: term['debug'] as boolean, columns: typeof columns === 'number' ? columns : undefined }
  }
}

/** Checks a line from the daemon. */
export function decodeServerLine(line: string): ServerMessage {
  const m = parseObject(line)
  switch (m['type']) {
    case 'hello':
      if (!Number.isSafeInteger(m['version']) || !Number.isSafeInteger(m['pid']) || typeof m['root'] !== 'string') break
      return { type: 'hello', version: m['version'] as number, pid: m['pid'] as number, root: m['root'] }
    case 'stdout':
    case 'stderr':
      if (typeof m['data'] !== 'string') break
      return { type: m['type'], data: m['data'] }
    case 'exit':
      if (!Number.isSafeInteger(m['code']) || (m['code'] as number) < 0 || (m['code'] as number) > 255) break
      return { type: 'exit', code: m['code'] as number }
    case 'error':
      if (typeof m['code'] !== 'string' || typeof m['message'] !== 'string') break
      return { type: 'error', code: m['code'], message: m['message'] }
  }
  throw new ControlProtocolError(`malformed message from the daemon: ${line.slice(0, 80)}`)
}

function parseObject(line: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    throw new ControlProtocolError('control message is not JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ControlProtocolError('control message is not a JSON object')
  return value as Record<string, unknown>
}
