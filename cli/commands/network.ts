/**
 * The network commands: serve (answer peers until stopped), sync (one-shot,
 * both directions) and watch (serve + dial + commit on change). Serve
 * and watch become the folder's daemon: they hold its store and answer the
 * other commands over the control socket (cli/daemon.ts). Logs go to
 * stdout, the events in words (src/node/events.ts LogLines); progress goes
 * to a terminal on stderr only.
 */
import type { Command } from 'commander'
import { DEFAULT_PORT, FolderService, type PeerAddress, LeftError, type Repo, SyncFailedError, UsageError, formatAddress, generateGuiToken, isLoopback, parseAddress } from '../../src/index.js'
import type { Runtime } from '../context.js'
import { type PageSettings, runDaemon } from '../daemon.js'
import { DEFAULT_GUI, guiOf, parseGui } from '../gui.js'
import type { Io } from '../io.js'
import { EXIT_CONFLICT_KEPT, reportError } from '../output.js'
import { ProgressLine } from '../progress.js'

interface NetworkFlags {
  quiet?: boolean
  timeout?: string
}

/** Registers serve, sync and watch on `program`. */
export function registerNetworkCommands(program: Command, rt: Runtime): void {
  const { io } = rt
  program.command('serve')
    .description('serve this folder to peers that hold its key, until SIGINT, SIGTERM or `left stop`')
    .option('--listen <host:port>', `address to listen on (default: the remembered one, else 0.0.0.0:${DEFAULT_PORT})`)
    .option('-q, --quiet', 'no progress display')
    .option('--timeout <seconds>', 'drop a peer that stalls this long (default 30)')
    .action(async (opts: NetworkFlags & { listen?: string }, cmd: Command) => {
      const repo = await rt.ownRepo(cmd)
      if (repo === undefined) return
      await runService(io, repo, opts, listenAddress(opts.listen ?? repo.config.listen), [], false)
    })

  program.command('sync')
    .description('sync once with each peer, both ways: fetch, merge, update the folder; exit 0 when in sync')
    .argument('<peer...>', `peer address host[:port] (default port ${DEFAULT_PORT})`)
    .option('-q, --quiet', 'no progress display')
    .option('--timeout <seconds>', 'give up on a peer that stalls this long (default 30)')
    .action(async (peers: string[], opts: NetworkFlags, cmd: Command) => {
      const addresses = peers.map((p) => parseAddress(p))
      await rt.withRepo(cmd, async (repo) => {
        const progress = new ProgressLine(io, !opts.quiet)
        // Beside a running synchronizer, sync through it: it already serves and holds the folder.
        const running = rt.node?.service
        let service: FolderService | undefined = running
        let conflicts = 0
        let stopCounting = (): void => {}
        try {
          service ??= await FolderService.start({ repo, unwatched: true, ...events(progress, opts.quiet === true), ...timeout(opts) })
          // Conflicts kept while this sync runs end it with EXIT_CONFLICT_KEPT, so a script knows to look.
          stopCounting = service.events.subscribe((e) => { if (e.type === 'conflict') conflicts++ })
          // Beside a running watch, only what it saw change; else the whole
          // folder, once: the integrates after it look only at what they
          // find edited (see ServiceOptions.unwatched).
          await service.commitAndAnnounce(undefined, { changedOnly: service.watching })
          const failures: unknown[] = []
          for (const address of addresses) {
            try {
              const session = await service.connectOnce(address)
              await service.network.waitInSync(session)
              // A running synchronizer keeps the session, as it keeps any peer's.
              if (running === undefined) await session.close()
              const { bytesIn, bytesOut } = session.stats
              if (!opts.quiet) progress.log(`in sync with ${formatAddress(address)} (received ${bytesIn} bytes, sent ${bytesOut} bytes)`)
            } catch (err) {
              failures.push(err)
            }
          }
          throwFailures(failures, io)
          const head = await repo.head()
          io.say(head === undefined ? 'in sync (no commits yet)' : `in sync at ${await repo.shortId(head)}`)
          if (conflicts > 0) {
            io.warn(`left: kept both versions of ${conflicts} file${conflicts === 1 ? '' : 's'} edited on both sides; the conflict copies are in the share folder`)
            io.exitCode = EXIT_CONFLICT_KEPT
          }
        } finally {
          stopCounting()
          progress.clear()
          if (running === undefined) await service?.stop()
        }
      })
    })

  program.command('watch')
    .description('serve, keep connected to peers, and commit and sync every change as it happens')
    .option('--listen <host:port>', `address to listen on (remembered; default 0.0.0.0:${DEFAULT_PORT})`)
    .option('--peers <list>', 'comma-separated peer addresses host[:port] (remembered)')
    .option('-q, --quiet', 'no progress display')
    .option('--timeout <seconds>', 'drop a peer that stalls this long (default 30)')
    .option('--gui <host:port>', `serve the status page here, or "off" (remembered; default ${DEFAULT_GUI})`)
    .option('--gui-remote', 'allow --gui to listen on an address other machines can reach (plain HTTP)')
    .action(async (opts: NetworkFlags & { listen?: string; peers?: string; gui?: string; guiRemote?: boolean }, cmd: Command) => {
      // Check every address before touching the config.
      const peerTexts = opts.peers?.split(',').map((p) => p.trim()).filter((p) => p.length > 0)
      peerTexts?.forEach((p) => parseAddress(p))
      if (opts.listen !== undefined) listenAddress(opts.listen)
      if (opts.gui !== undefined) parseGui(opts.gui, opts.guiRemote === true)
      const repo = await rt.ownRepo(cmd)
      if (repo === undefined) return
      let page: PageSettings | undefined
      try {
        if (opts.listen !== undefined || peerTexts !== undefined || opts.gui !== undefined) {
          await repo.remember({ listen: opts.listen ?? repo.config.listen, peers: peerTexts ?? repo.config.peers, gui: opts.gui ?? repo.config.gui })
        }
        const gui = guiOf(repo.config)
        if (gui !== 'off') {
          if (repo.config.guiToken === undefined) await repo.remember({ guiToken: generateGuiToken() })
          if (!isLoopback(gui.host)) io.warn(`left: the status page listens on ${formatAddress(gui)}, reachable from other machines over plain HTTP; anyone who sees its token can use it`)
          page = { address: gui, token: repo.config.guiToken! }
        }
      } catch (err) {
        await repo.close()
        throw err
      }
      const peers = (repo.config.peers ?? []).map((p) => parseAddress(p))
      await runService(io, repo, opts, listenAddress(repo.config.listen), peers, true, page)
    })
}

/** Runs serve or watch until a signal or `left stop`; closes `repo` when done. */
async function runService(io: Io, repo: Repo, opts: NetworkFlags, listen: PeerAddress, peers: readonly PeerAddress[], watch: boolean, page?: PageSettings): Promise<void> {
  const progress = new ProgressLine(io, !opts.quiet)
  let service: FolderService | undefined
  try {
    service = await FolderService.start({ repo, listen, peers, commitOnConnect: !watch, unwatched: !watch, ...events(progress, false), ...timeout(opts) })
    if (watch) await service.startWatch()
  } catch (err) {
    await service?.stop()
    await repo.close()
    throw err
  }
  const bound = formatAddress(service.listenAddress!)
  // Said once the control socket listens, so that every command works from here on.
  const ready = `${watch ? 'watching' : 'serving'} ${repo.share} as peer ${repo.config.peerId} on ${bound}` +
    (peers.length > 0 ? `; peers ${peers.map(formatAddress).join(', ')}` : '')
  await runDaemon(repo, service, (line) => progress.log(line), ready, page)
}

function events(progress: ProgressLine, quiet: boolean): { log: (line: string) => void; progress: ProgressLine['update']; progressDone: ProgressLine['done'] } {
  return {
    log: (line) => { if (!quiet) progress.log(line) },
    progress: (peer, p) => progress.update(peer, p),
    progressDone: (peer) => progress.done(peer)
  }
}

function timeout(opts: NetworkFlags): { timeoutMs?: number } {
  if (opts.timeout === undefined) return {}
  const s = Number(opts.timeout)
  if (!Number.isFinite(s) || s <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not ${JSON.stringify(opts.timeout)}`)
  return { timeoutMs: Math.round(s * 1000) }
}

function listenAddress(text: string | undefined): PeerAddress {
  return text === undefined ? { host: '0.0.0.0', port: DEFAULT_PORT } : parseAddress(text, { allowPortZero: true })
}

/** One failure is the command's error; several are listed, then the command fails. */
function throwFailures(failures: readonly unknown[], io: Io): void {
  if (failures.length === 1) throw failures[0]
  if (failures.length > 1) {
    for (const f of failures) reportError(f, io)
    throw new SyncFailedError(failures.length, failures.map((f) => (f instanceof LeftError ? f.code : 'LEFT_UNEXPECTED')))
  }
}
