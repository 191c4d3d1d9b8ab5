/**
 * The status page's HTTP server, run by `left watch`: the page's own files
 * (which hold nothing of the folder), its API and its event stream, on
 * loopback by default. Every request is checked first (access.ts: Host,
 * Origin, and for the API the token); only then does it reach the daemon, through the same handler as the control socket, which runs
 * the `left` commands that routes.ts picks. So this module knows nothing of
 * commands or of the folder; docs/gui.md is its contract.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { ListenError } from '../errors.js'
import type { ControlHandler, ControlOutput } from '../node/control.js'
import { CONTROL_VERSION, type RunMessage } from '../node/control-messages.js'
import { NONCE, SECURITY_HEADERS, TOKEN_HEADER, hostAllowed, originAllowed, tokenMatches, tokenProof } from './access.js'
import { type ApiPlan, planRequest } from './routes.js'

/** Options of `listenGui`. */
export interface GuiServerOptions {
  readonly host: string
  /** 0 picks a free port. */
  readonly port: number
  /** The secret every request must carry (docs/gui.md, "Access"). */
  readonly token: string
  /** Runs one `left` command line inside the daemon, as for a control socket client. */
  readonly handler: ControlHandler
  /** The share folder: the page's paths are relative to it. */
  readonly shareDir: string
  /** One line per refused or failed request, for the daemon's log. */
  readonly log?: (line: string) => void
}

/** A listening page server. */
export interface GuiServer {
  readonly host: string
  readonly port: number
  /** Stops listening and ends open event streams. */
  close(): Promise<void>
}

/** Longest request body read, in bytes: the page sends only small JSON objects. */
const MAX_BODY = 64 * 1024

/** A comment line on idle event streams, so proxies and browsers keep them open. */
const KEEPALIVE_MS = 15_000

// The page: HTML and CSS from the package's gui/ folder, scripts as compiled into dist/gui/.
const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const PAGE_FILES: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '/': { file: 'gui/index.html', type: 'text/html; charset=utf-8' },
  '/style.css': { file: 'gui/style.css', type: 'text/css; charset=utf-8' }
}

/** The page file at `pathname`: one listed above, or one of the page's compiled modules. */
function pageFile(pathname: string): { readonly file: string; readonly type: string } | undefined {
  if (/^\/[a-z-]+\.js$/.test(pathname)) return { file: `dist/gui${pathname}`, type: 'text/javascript; charset=utf-8' }
  return PAGE_FILES[pathname]
}

/** What a server is doing: its open event streams and running commands, and whether it is closing. */
interface Serving {
  closing: boolean
  /** This server's run: random, new each time the daemon starts. */
  readonly run: string
  /** Each open event stream, and what ends the command that feeds it. */
  readonly streams: Map<ServerResponse, AbortController>
  readonly running: Set<Promise<unknown>>
}

/** Serves the page on `host:port` until closed. Fails with ListenError when the address cannot be bound. */
export async function listenGui(opts: GuiServerOptions): Promise<GuiServer> {
  const serving: Serving = { closing: false, run: randomBytes(8).toString('hex'), streams: new Map(), running: new Set() }
  const server = createServer((req, res) => {
    handle(opts, req, res, serving).catch((err: unknown) => {
      opts.log?.(`page: ${req.method} ${req.url}: ${err instanceof Error ? err.message : String(err)}`)
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n')
      else res.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new ListenError(`${opts.host}:${opts.port}`, err)))
    server.listen(opts.port, opts.host, resolve)
  })
  const bound = server.address() as AddressInfo
  return {
    host: opts.host,
    port: bound.port,
    close: () => closeServer(server, serving)
  }
}

/**
 * Stops taking requests, ends the event streams, waits for the commands
 * still running (a restore finishes, as it would for a control socket
 * client), then cuts every connection, so a client that holds one open
 * cannot keep the daemon from stopping.
 */
async function closeServer(server: Server, serving: Serving): Promise<void> {
  serving.closing = true
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  for (const [res, gone] of serving.streams) {
    gone.abort()
    res.end()
  }
  while (serving.running.size > 0) await Promise.allSettled([...serving.running])
  server.closeAllConnections()
  await closed
}

/** Runs one command line through the daemon's handler, counted until it ends. */
function runCommand(opts: GuiServerOptions, serving: Serving, argv: readonly string[], output: ControlOutput): Promise<number> {
  const run = opts.handler(runMessage(opts, argv), output)
  serving.running.add(run)
  const done = (): void => { serving.running.delete(run) }
  run.then(done, done)
  return run
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, ...extra })
  res.end(body)
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value))
}

function stopping(res: ServerResponse): void {
  send(res, 503, 'text/plain; charset=utf-8', 'the synchronizer is stopping\n', { connection: 'close' })
}

function refuse(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: { code: status === 401 ? 'LEFT_GUI_TOKEN' : 'LEFT_GUI_REQUEST', message } })
}

async function handle(opts: GuiServerOptions, req: IncomingMessage, res: ServerResponse, serving: Serving): Promise<void> {
  if (serving.closing) return stopping(res)
  const host = req.headers.host
  if (!hostAllowed(host, opts.host)) return refuse(res, 403, 'this page answers only to its address (Host refused)')
  if (!originAllowed(req.headers.origin, host)) return refuse(res, 403, 'requests from other sites are refused (Origin)')
  const url = new URL(req.url ?? '/', 'http://page')
  if (url.pathname === '/api/proof') {
    // Open to all: it proves this server holds the token without showing it (see tokenProof).
    const nonce = url.searchParams.get('nonce') ?? ''
    return NONCE.test(nonce) ? sendJson(res, 200, { proof: tokenProof(opts.token, nonce) }) : refuse(res, 400, 'nonce must be 16 to 128 hex digits')
  }
  if (url.pathname.startsWith('/api/')) {
    const given = req.headers[TOKEN_HEADER]
    if (!tokenMatches(typeof given === 'string' ? given : undefined, opts.token)) return refuse(res, 401, "the token is missing or wrong: 'left gui' prints the page's address with it")
    const body = req.method === 'POST' ? await readBody(req) : {}
    // Stopping began while the body arrived: no command may start after the server waits for the running ones.
    if (serving.closing) return stopping(res)
    if (body === 'too long') return refuse(res, 413, `the body must be at most ${MAX_BODY} bytes`)
    if (body === undefined) return refuse(res, 400, 'the body must be a JSON object')
    const plan = planRequest({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body })
    // The whole answer counts as running, so a restore's commit is waited for too.
    const answering = answer(opts, plan, res, serving)
    serving.running.add(answering)
    return answering.finally(() => serving.running.delete(answering))
  }
  if (req.method !== 'GET') return refuse(res, 405, 'only GET')
  // The page's own files hold nothing of the folder; everything it shows comes through the API.
  const page = pageFile(url.pathname)
  if (page === undefined) return refuse(res, 404, 'not found')
  let body: Buffer
  try {
    body = await readFile(PACKAGE_ROOT + page.file)
  } catch {
    return refuse(res, 404, 'not found')
  }
  send(res, 200, page.type, body)
}

/** A POST body as a JSON object; undefined when it is not one. */
async function readBody(req: IncomingMessage): Promise<Record<string, unknown> | undefined | 'too long'> {
  const parts: Buffer[] = []
  let size = 0
  // Read to the end even past the limit (keeping nothing), so the answer can still be sent.
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length
    if (size <= MAX_BODY) parts.push(part)
  }
  if (size > MAX_BODY) return 'too long'
  if (size === 0) return {}
  try {
    const value: unknown = JSON.parse(Buffer.concat(parts).toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

function runMessage(opts: GuiServerOptions, argv: readonly string[]): RunMessage {
  return {
    type: 'run',
    version: CONTROL_VERSION,
    argv,
    cwd: opts.shareDir,
    terminal: { stdoutIsTTY: false, stderrIsTTY: false, columns: undefined, debug: false }
  }
}

async function answer(opts: GuiServerOptions, plan: ApiPlan, res: ServerResponse, serving: Serving): Promise<void> {
  if (plan.kind === 'error') return refuse(res, plan.status, plan.message)
  if (plan.kind === 'events') return streamEvents(opts, serving, plan.argv, res)
  let stdout = ''
  for (const argv of plan.steps) {
    if (serving.closing) return stopping(res)
    stdout = ''
    let stderr = ''
    // Not aborted when the page goes: a restore or commit finishes, as for a control socket client.
    const code = await runCommand(opts, serving, argv, {
      stdout: (t) => { stdout += t },
      stderr: (t) => { stderr += t },
      gone: new AbortController().signal
    })
    if (code !== 0) return sendJson(res, code === 2 ? 400 : 422, { error: commandError(stdout, stderr), exitCode: code })
  }
  sendJson(res, 200, parseOutput(stdout))
}

/** What a failed command said: its `--json` error, else its `left: …` line. */
function commandError(stdout: string, stderr: string): { code: string; message: string } {
  const json = parseOutput(stdout) as { error?: { code: string; message: string } } | undefined
  if (json?.error !== undefined) return json.error
  const line = stderr.split('\n').find((l) => l.startsWith('left: ')) ?? stderr.trim()
  return { code: 'LEFT_COMMAND', message: line.replace(/^left: /, '') }
}

/** A command's stdout: its JSON value, or `{"message"}` for a command that prints words. */
function parseOutput(stdout: string): unknown {
  try {
    return JSON.parse(stdout)
  } catch {
    return { message: stdout.trim() }
  }
}

/**
 * Server-Sent Events from `left events --json`: one event per line it prints,
 * with its id, so a page that reconnects asks for what it missed. Ends when
 * the page goes or the daemon stops.
 */
async function streamEvents(opts: GuiServerOptions, serving: Serving, argv: readonly string[], res: ServerResponse): Promise<void> {
  const gone = new AbortController()
  res.on('close', () => gone.abort())
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8' })
  // Event ids start at 1 in each run of the daemon: the run's id tells a page that reconnects whether its last id still means anything.
  res.write(`retry: 1000\nevent: run\ndata: ${JSON.stringify({ run: serving.run })}\n\n`)
  serving.streams.set(res, gone)
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS)
  let pending = ''
  try {
    await runCommand(opts, serving, argv, {
      stdout: (text) => {
        pending += text
        let nl
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl)
          pending = pending.slice(nl + 1)
          res.write(`id: ${eventId(line)}\ndata: ${line}\n\n`)
        }
      },
      stderr: () => {},
      gone: gone.signal
    })
  } finally {
    clearInterval(keepalive)
    serving.streams.delete(res)
    res.end()
  }
}

function eventId(line: string): string {
  try {
    return String((JSON.parse(line) as { id?: unknown }).id ?? '')
  } catch {
    return ''
  }
}
