/**
 * Commands about the running synchronizer: stop, events, pause and resume.
 * They run inside the daemon (cli/context.ts); pause and resume also work
 * without one, by editing the remembered pause list.
 */
import type { Command } from 'commander'
import { EVENT_TYPES, NoDaemonError, type NodeEvent, UsageError, describeEvent, formatAddress, parseAddress, withPaused, withResumed } from '../../src/index.js'
import type { Runtime } from '../context.js'
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
