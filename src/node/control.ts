/**
 * The control socket: how the process that holds a folder's store (a running
 * `left watch` or `left serve`) answers the CLI. It listens on a Unix domain
 * socket inside `.left/` (mode 0600 in a 0700 directory; nothing reachable
 * from the network), or, when that path is too long for a socket, in a
 * private directory under the temp dir. The daemon runs each request through a handler it is
 * given, so this module knows nothing about commands; docs/control.md is the
 * protocol.
 */
import { createHash } from 'node:crypto'
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises'
import { type Server, type Socket, connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { ConfigError, LeftError, errorMessage } from '../errors.js'
import {
  CONTROL_VERSION, ControlProtocolError, type HelloMessage, LineDecoder, type RunMessage, type ServerMessage,
  decodeClientLine, decodeServerLine, encodeLine
} from './control-messages.js'

/** A client must send its request within this long after connecting. */
export const REQUEST_TIMEOUT_MS = 10_000

/** Unix socket paths are limited to about 108 bytes; keep well inside that. */
const MAX_SOCKET_PATH = 100

/**
 * Where the control socket of the folder whose `.left/` is `leftDir` lives:
 * `.left/control.sock`, or, when that path is too long for a Unix socket, a
 * name derived from it in a private directory under the system temp dir.
 * Daemon and client compute the same path, so nothing records it.
 */
export function controlSocketPath(leftDir: string): string {
  const inside = join(leftDir, 'control.sock')
  if (Buffer.byteLength(inside) <= MAX_SOCKET_PATH) return inside
  const digest = createHash('sha256').update(leftDir).digest('hex').slice(0, 24)
  return join(privateTempDir(), `${digest}.sock`)
}

function privateTempDir(): string {
  return join(tmpdir(), `left-${process.getuid?.() ?? 'user'}`)
}

/**
 * Refuses a directory that another user owns or can enter: someone who
 * could put a socket there could pose as the daemon, or bar it.
 */
async function checkPrivate(dir: string): Promise<void> {
  let st
  try {
    st = await lstat(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  const uid = process.getuid?.()
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
    throw new ConfigError(`${dir} must be a directory of yours that only you can open (mode 0700); remove it and try again`)
  }
}

/** What a running command writes to its client. */
export interface ControlOutput {
  stdout(text: string): void
  stderr(text: string): void
  /** Aborted when the client disconnects; streaming commands stop on it. */
  readonly gone: AbortSignal
}

/** Runs one request inside the daemon; resolves with the exit code. Must not throw. */
export type ControlHandler = (request: RunMessage, output: ControlOutput) => Promise<number>

/** Options of `listenControl`. */
export interface ControlServerOptions {
  readonly leftDir: string
  /** The folder root, sent in the hello. */
  readonly root: string
  readonly handler: ControlHandler
  /** One line per refused client, for the daemon's log. */
  readonly log?: (line: string) => void
  readonly requestTimeoutMs?: number
}

/** A listening control socket. */
export interface ControlServer {
  /** Stops accepting, tells streaming commands their client is gone, and waits for running commands to end. */
  close(): Promise<void>
}

/**
 * Listens on the folder's control socket. The caller must hold the store
 * lock: then any socket file already there was left by a process that died
 * without closing it (a kill -9), and is replaced.
 */
export async function listenControl(options: ControlServerOptions): Promise<ControlServer> {
  const path = controlSocketPath(options.leftDir)
  // Owner only, even for a folder made by an older version.
  await chmod(options.leftDir, 0o700)
  if (dirname(path) !== options.leftDir) {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    await checkPrivate(dirname(path))
  }
  try {
    if ((await lstat(path)).isSocket()) await unlink(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const running = new Set<Promise<void>>()
  const clients = new Set<{ socket: Socket; gone: AbortController }>()
  const hello: HelloMessage = { type: 'hello', version: CONTROL_VERSION, pid: process.pid, root: options.root }
  const server: Server = createServer((socket) => {
    const client = { socket, gone: new AbortController() }
    clients.add(client)
    const work = serveClient(socket, hello, options, client.gone).finally(() => {
      clients.delete(client)
      running.delete(work)
    })
    running.add(work)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => {
      server.off('error', reject)
      resolve()
    })
  })
  await chmod(path, 0o600)
  return {
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const c of clients) c.gone.abort()
      await Promise.all(running)
      for (const c of clients) c.socket.destroy()
      await closed
    }
  }
}

/** One client: hello, one request, its output, exit. Never throws. */
async function serveClient(socket: Socket, hello: HelloMessage, options: ControlServerOptions, gone: AbortController): Promise<void> {
  const send = (m: ServerMessage): void => {
    if (!socket.destroyed && socket.writable) socket.write(encodeLine(m))
  }
  socket.on('error', () => {})
  socket.on('close', () => gone.abort())
  send(hello)
  let request: RunMessage
  try {
    request = await readRequest(socket, options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS)
  } catch (err) {
    options.log?.(`control client refused: ${errorMessage(err)}`)
    send({ type: 'error', code: err instanceof LeftError ? err.code : 'LEFT_CONTROL', message: errorMessage(err) })
    socket.end()
    // A client that keeps writing is cut off rather than left half-open.
    setTimeout(() => socket.destroy(), 1_000).unref()
    return
  }
  const code = await options.handler(request, {
    stdout: (data) => send({ type: 'stdout', data }),
    stderr: (data) => send({ type: 'stderr', data }),
    gone: gone.signal
  })
  send({ type: 'exit', code })
  socket.end()
}

/** Reads the one request line, within `timeoutMs`. */
function readRequest(socket: Socket, timeoutMs: number): Promise<RunMessage> {
  return new Promise((resolve, reject) => {
    const decoder = new LineDecoder()
    const done = (err: unknown, request?: RunMessage): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.pause()
      if (request !== undefined) resolve(request)
      else reject(err)
    }
    const onData = (chunk: Buffer): void => {
      try {
        const lines = decoder.push(chunk)
        if (lines.length > 0) done(undefined, decodeClientLine(lines[0]!))
      } catch (err) {
        done(err)
      }
    }
    const onEnd = (): void => done(new ControlProtocolError('the client closed before sending a request'))
    const timer = setTimeout(() => done(new ControlProtocolError(`no request within ${timeoutMs} ms`)), timeoutMs)
    socket.on('data', onData)
    socket.on('end', onEnd)
  })
}

/** A daemon found on a folder's control socket. */
export interface DaemonConnection {
  readonly hello: HelloMessage
  /** Sends `request`, streams its output to `output`, resolves with its exit code. */
  run(request: Omit<RunMessage, 'type' | 'version'>, output: { stdout(text: string): void; stderr(text: string): void }): Promise<number>
}

/**
 * Connects to the daemon of the folder whose `.left/` is `leftDir`.
 * Resolves undefined when no daemon listens there (no socket, or a stale one).
 */
export async function connectDaemon(leftDir: string): Promise<DaemonConnection | undefined> {
  const path = controlSocketPath(leftDir)
  // In the shared temp dir, a socket is trusted only inside our own private directory.
  if (dirname(path) !== leftDir) await checkPrivate(dirname(path))
  const socket = connect(path)
  const decoder = new LineDecoder()
  const queue: ServerMessage[] = []
  let failure: unknown
  let wake: (() => void) | undefined
  const notify = (): void => {
    const w = wake
    wake = undefined
    w?.()
  }
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const line of decoder.push(chunk)) queue.push(decodeServerLine(line))
    } catch (err) {
      failure = err
      socket.destroy()
    }
    notify()
  })
  socket.on('error', (err) => {
    failure ??= err
    notify()
  })
  socket.on('close', () => {
    failure ??= new ControlProtocolError('the daemon closed the connection')
    notify()
  })
  const next = async (): Promise<ServerMessage> => {
    for (;;) {
      const m = queue.shift()
      if (m !== undefined) return m
      if (failure !== undefined) throw failure
      await new Promise<void>((resolve) => { wake = resolve })
    }
  }
  let hello: ServerMessage
  try {
    hello = await next()
  } catch (err) {
    socket.destroy()
    const code = (err as NodeJS.ErrnoException).code
    // No daemon: no socket, or one left by a process that is gone.
    if (code === 'ENOENT' || code === 'ECONNREFUSED') return undefined
    throw err
  }
  if (hello.type !== 'hello') {
    socket.destroy()
    throw new ControlProtocolError('the daemon did not greet')
  }
  const greeting = hello
  return {
    hello: greeting,
    async run(request, output) {
      if (greeting.version !== CONTROL_VERSION) {
        throw new ControlProtocolError(`the running daemon (pid ${greeting.pid}) speaks control protocol ${greeting.version}, this left speaks ${CONTROL_VERSION}; restart it`)
      }
      socket.write(encodeLine({ type: 'run', version: CONTROL_VERSION, ...request }))
      try {
        for (;;) {
          const m = await next()
          if (m.type === 'stdout') output.stdout(m.data)
          else if (m.type === 'stderr') output.stderr(m.data)
          else if (m.type === 'exit') return m.code
          else if (m.type === 'error') throw new ControlProtocolError(`the daemon refused the request: ${m.message}`)
          else throw new ControlProtocolError('unexpected hello')
        }
      } catch (err) {
        if (err instanceof LeftError) throw err
        throw new ControlProtocolError(`lost the connection to the daemon (pid ${greeting.pid}): ${errorMessage(err)}`)
      } finally {
        socket.destroy()
      }
    }
  }
}
