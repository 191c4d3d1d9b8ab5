/**
 * Commands about the running synchronizer: stop, events, pause and resume.
 * They run inside the daemon (cli/context.ts); pause and resume also work
 * without one, by editing the remembered pause list.
 */
import type { Command } from 'commander'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { EVENT_TYPES, NoDaemonError, type NodeEvent, Repo, tokenProof, UsageError, describeEvent, formatAddress, parseAddress, withPaused, withResumed } from '../../src/index.js'
import { type Runtime, workDir } from '../context.js'
import { guiOf, pageBase, pageUrl } from '../gui.js'
import { printable, transferText } from '../output.js'

/** Registers stop, events, pause and resume on `program`. */
export function registerDaemonCommands(program: Command, rt: Runtime): void {
  const { io } = rt

  program.command('stop')
    .description('stop the running synchronizer (left watch or left serve) of this folder cleanly')
    .action(async (_opts: unknown, cmd: Command) => {
      await rt.withRepo(cmd, async () => {
        if (rt.node === undefined) throw new NoDaemonError()
        await rt.node.stop()
        io.say(`stopped the synchronizer (pid ${process.pid})`)
      })
    })

  program.command('gui')
    .description("print the status page's address, token included, and open it in a browser")
    .option('--no-open', 'only print the address')
    .action(async (opts: { open: boolean }, cmd: Command) => {
      // Like `key`, this reads only the config, so it runs here even beside a daemon: the browser opens on this screen.
      const dir = workDir(cmd, rt)
      const config = await Repo.readConfig(dir)
      const gui = guiOf(config)
      if (gui === 'off') throw new UsageError("the status page is off; 'left watch --gui 127.0.0.1:24243' turns it on")
      if (config.guiToken === undefined) throw new NoDaemonError("the status page has no token yet: 'left watch' makes one and serves the page")
      const url = pageUrl(gui, config.guiToken)
      io.say(url)
      const answer = await pageAnswers(pageBase(gui), config.guiToken)
      if (answer === 'nobody') io.warn("left: nothing answers at that address yet: the page is served while 'left watch' runs")
      else if (answer === 'another') io.warn("left: something else answers at that address (another folder's page?); 'left watch --gui HOST:PORT' gives this folder its own")
      else if (opts.open) openBrowser(await redirectFile((await Repo.layoutOf(dir)).leftDir, url))
    })

  program.command('events')
    .description('stream the synchronizer\'s events as they happen, one per line, until interrupted')
    .option('--json', 'one JSON object per line (NDJSON)')
    .option('--since <id>', 'first replay the kept events after this id (0: all that are kept)')
    .option('--type <types>', `only these comma-separated types: ${EVENT_TYPES.join(', ')}`)
    .action(async (opts: { json?: boolean; since?: string; type?: string }, cmd: Command) => {
      const since = opts.since === undefined ? undefined : Number(opts.since)
      if (since !== undefined && !(Number.isSafeInteger(since) && since >= 0)) throw new UsageError(`--since must be an event id (a whole number), not ${JSON.stringify(opts.since)}`)
      const types = opts.type?.split(',').map((t) => t.trim())
      const unknown = types?.find((t) => !(EVENT_TYPES as readonly string[]).includes(t))
      if (unknown !== undefined) throw new UsageError(`unknown event type ${JSON.stringify(unknown)}; known: ${EVENT_TYPES.join(', ')}`)
      await rt.withRepo(cmd, async () => {
        if (rt.node === undefined) throw new NoDaemonError()
        const log = rt.node.service.events
        const print = (e: NodeEvent): void => {
          if (types !== undefined && !types.includes(e.type)) return
          if (opts.json) io.out(JSON.stringify(eventJson(e)) + '\n')
          else io.say(`${new Date(e.time).toISOString().slice(11, 19)} ${printable(eventText(e))}`)
        }
        const gone = io.gone
        if (gone.aborted) return
        const backlog = since === undefined ? [] : log.since(since)
        await new Promise<void>((resolve) => {
          for (const e of backlog) print(e)
          const stop = log.subscribe(print)
          gone.addEventListener('abort', () => {
            stop()
            resolve()
          }, { once: true })
        })
      })
    })

  for (const verb of ['pause', 'resume'] as const) {
    program.command(verb)
      .description(verb === 'pause'
        ? 'stop syncing with one peer (id or host[:port]) or with all; local commits go on; remembered across restarts'
        : 'sync again with one paused peer (id or host[:port]), or with all')
      .argument('[peer]', 'peer id (16 hex digits) or address host[:port]; default: every peer')
      .action(async (peer: string | undefined, _opts: unknown, cmd: Command) => {
        const target = peer === undefined ? undefined : peerTarget(peer)
        await rt.withRepo(cmd, async (repo) => {
          const current = rt.node?.service.pausedPeers ?? repo.config.paused ?? []
          if (verb === 'resume' && target !== undefined && !current.includes(target)) {
            throw new UsageError(current.includes('*')
              ? `every peer is paused; 'left resume' without a peer resumes them all`
              : `${target} is not paused${current.length > 0 ? ` (paused: ${current.join(', ')})` : ''}`)
          }
          if (rt.node !== undefined) await (verb === 'pause' ? rt.node.service.pause(target) : rt.node.service.resume(target))
          else await repo.remember({ paused: verb === 'pause' ? withPaused(current, target) : withResumed(current, target) })
          io.say(`${verb === 'pause' ? 'paused' : 'resumed'} syncing with ${target ?? 'all peers'}`)
        })
      })
  }
}

/** A peer id as is; an address in its canonical form: `host:port`, or `host` (every port) when no port is given. */
function peerTarget(text: string): string {
  if (/^[0-9a-f]{16}$/.test(text)) return text
  const address = parseAddress(text)
  const full = formatAddress(address)
  return text.endsWith(`:${address.port}`) ? full : full.slice(0, full.lastIndexOf(':'))
}

/** An event as one JSON object: its fields, the time as ISO 8601. */
function eventJson(e: NodeEvent): Record<string, unknown> {
  return { ...e, time: new Date(e.time).toISOString() }
}

/** An event in words: its log line, or for fetches a line of their own. */
function eventText(e: NodeEvent): string {
  switch (e.type) {
    case 'fetch-started': return `fetching ${e.head} from ${e.peer}`
    case 'fetch-progress': return `receiving from ${e.peer}: ${transferText(e)}`
    case 'fetch-finished': return `fetch from ${e.peer} ${e.ok ? 'finished' : 'failed'}`
    default: return describeEvent(e) ?? e.type
  }
}

/**
 * Who answers at the page's address: this folder's page, something else, or
 * nobody. The server proves it holds the token (an HMAC of a fresh nonce), so
 * the token is never sent to whatever listens there.
 */
async function pageAnswers(base: string, token: string): Promise<'this' | 'another' | 'nobody'> {
  const nonce = randomBytes(16).toString('hex')
  let res: Response
  try {
    res = await fetch(`${base}api/proof?nonce=${nonce}`, { signal: AbortSignal.timeout(2000) })
  } catch {
    return 'nobody'
  }
  // 503: this folder's daemon is stopping.
  if (res.status === 503) return 'nobody'
  const proof = await res.json().then((v) => (v as { proof?: unknown }).proof, () => undefined)
  return proof === tokenProof(token, nonce) ? 'this' : 'another'
}

/**
 * A page, `.left/gui.html` (mode 0600, in the 0700 `.left/`), that sends the
 * browser on to `url`. The browser is started with this file's name, not
 * with `url`: a program's arguments are visible to every local user, and
 * the token must not be.
 */
async function redirectFile(leftDir: string, url: string): Promise<string> {
  const file = join(leftDir, 'gui.html')
  const href = url.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')
  const html = `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${href}"><title>LEFT</title><a href="${href}">Open the LEFT status page</a>\n`
  // Made anew, so it has this mode whatever was there before.
  await rm(file, { force: true })
  await writeFile(file, html, { mode: 0o600, flag: 'wx' })
  return pathToFileURL(file).href
}

/** Opens `url` with the desktop's browser, where there is one; says nothing when there is none. */
function openBrowser(url: string): void {
  const [command, args] = process.platform === 'darwin' ? ['open', [url]]
    : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]]
      : ['xdg-open', [url]]
  try {
    const child = spawn(command as string, args as string[], { detached: true, stdio: 'ignore' })
    child.on('error', () => {})
    child.unref()
  } catch {
    // No opener: the printed address is enough.
  }
}
