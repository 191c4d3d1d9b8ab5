/**
 * A folder on the network: the listener, one dialer per configured peer
 * (retrying with backoff while the peer is away), and optionally the folder
 * watch that commits local changes and announces them; what it is doing,
 * the peers' state and the pause list for `left status`, and its events.
 * `left serve`, `left sync` and `left watch` are thin shells around this.
 */
import { lstat } from 'node:fs/promises'
import { join } from 'node:path'
import { SessionClosedError, UsageError, errorMessage, hasCode } from '../errors.js'
import { type PeerAddress, formatAddress } from '../sync/address.js'
import type { Session } from '../sync/session.js'
import { type Listener, type TransportSessionOptions, connect, listen } from '../sync/tls.js'
import { type FolderWatch, watchFolder } from '../watch/watcher.js'
import { ChangedPaths } from '../worktree/changed-paths.js'
import type { IgnoreRules } from '../worktree/ignore.js'
import { LATER_BYTES } from '../sync/content.js'
import { type NetworkEvents, PeerNetwork, type PeerRecord } from './network.js'
import type { CID } from 'multiformats/cid'
import type { CommitResult, Progress, Repo } from '../repo/repo.js'
import type { ActivityState } from './activity.js'
import { Backoff } from './backoff.js'
import { EventLog, LogLines, type NodeEventBody } from './events.js'
import { Sleepers } from './sleepers.js'
import { isPausedPeer, withPaused, withResumed } from './pause.js'

/** How a service is set up. */
export interface ServiceOptions extends Omit<NetworkEvents, 'emit'> {
  readonly repo: Repo
  /** The log's lines for events (see events.ts LogLines). */
  log(line: string): void
  /** Where to accept peers; undefined means dial only. */
  readonly listen?: PeerAddress
  /** Peers to keep a connection with, redialled with backoff. */
  readonly peers?: readonly PeerAddress[]
  /**
   * Commit local changes whenever a peer connects, so it gets the folder as
   * it is now. `left serve` sets this; watch commits on change instead.
   */
  readonly commitOnConnect?: boolean
  /**
   * For a service with no folder watch (`left serve`, and `left sync` with
   * no daemon): once a commit has scanned the whole folder, an integrate
   * commits only the paths its apply found edited, where it would scan the
   * whole folder again. The apply's guard finds an edit to a path it
   * writes by its stat (the edit is committed and merged in another
   * round; docs/architecture.md says what the guard misses); an edit
   * elsewhere stays in the folder for the next whole commit: the next
   * connection's, or the next command's.
   */
  readonly unwatched?: boolean
  /** Session stall timeout in ms. */
  readonly timeoutMs?: number
  /** Redial delays: the first retry waits `minRetryMs`, doubling up to `maxRetryMs`. */
  readonly minRetryMs?: number
  readonly maxRetryMs?: number
}

/** Options of the folder watch. */
export interface WatchSettings {
  /** Commit after this long without filesystem events (default 200 ms). */
  readonly quietMs?: number
  /** A file modified this recently is still being written; wait (default 400 ms). */
  readonly settleMs?: number
}

/** How a peer's head stands against ours. `unknown` until it has told us. */
export type SyncRelation = 'in sync' | 'behind' | 'ahead' | 'diverged' | 'unknown'

/** One peer in `left status`. */
export interface PeerStatus extends Omit<PeerRecord, 'id' | 'lastSeen'> {
  /** Undefined for a configured address never reached. */
  readonly id: string | undefined
  readonly lastSeen: number | undefined
  readonly sync: SyncRelation
  /** Not synced with until `left resume`. */
  readonly paused: boolean
}

/** The state of a running node, for `left status`. */
export interface NodeStatus {
  readonly mode: 'watch' | 'serve'
  readonly activity: ActivityState
  readonly startedAt: number
  /** The bound listen address, if listening. */
  readonly listen: string | undefined
  readonly head: CID | undefined
  readonly peers: readonly PeerStatus[]
  /** The pause list (peer ids, addresses, `*`). */
  readonly paused: readonly string[]
}

/**
 * The peer is `behind` when its head is an ancestor of ours, `ahead` when
 * ours is an ancestor of its (or we have not fetched its head yet).
 */
async function relation(repo: Repo, ours: CID | undefined, theirs: CID | null): Promise<SyncRelation> {
  if (theirs === null) return ours === undefined ? 'in sync' : 'behind'
  if (ours === undefined) return 'ahead'
  if (ours.equals(theirs)) return 'in sync'
  if (!(await repo.objects.has(theirs))) return 'ahead'
  // `ours` is HEAD: its history is indexed, so this costs a set lookup.
  if (await repo.inHistory(theirs)) return 'behind'
  if (await repo.isAncestor(ours, theirs)) return 'ahead'
  return 'diverged'
}

/** How often `left watch` applies the folder's retention policy (and once at start). */
const RETENTION_EVERY_MS = 60 * 60 * 1000

/**
 * How often the watch scans the whole folder anyway, as Syncthing does
 * beside its watcher: a change whose event was lost (the kernel's queue
 * overflowed) is committed within this long.
 */
const FULL_SCAN_EVERY_MS = 60 * 60 * 1000

/** The same after a watcher error: some paths may not be watched at all. */
const FULL_SCAN_DEGRADED_MS = 60 * 1000

/** How long a session must last before the redial delay starts over. */
const STABLE_MS = 5_000

/** A running folder service. */
export class FolderService {
  readonly network: PeerNetwork
  /** Everything that happens, for `left events` (and the log). */
  readonly events = new EventLog()
  private listener: Listener | undefined
  private watch: FolderWatch | undefined
  /** Set when the system's watches ran out: scan the whole folder every FULL_SCAN_DEGRADED_MS. */
  private watchDegraded = false
  private stopped = false
  private readonly startedAt = Date.now()
  /** The peer id behind each configured address, once a dial has reached it. */
  private readonly dialedIds = new Map<string, string>()
  /** Peers not to sync with (see pause.ts); kept in the config. */
  private paused: readonly string[]
  /** Dialers and the commit retry wait here; `resume` and `stop` wake them. */
  private readonly sleepers = new Sleepers()
  private readonly dialers: Promise<void>[] = []
  /** Background work that stop() waits for. */
  private readonly loops: Promise<void>[] = []
  /** Aborts connection attempts in flight when the service stops. */
  private readonly stopping = new AbortController()
  private readonly logLines = new LogLines()

  private constructor(private readonly options: ServiceOptions) {
    this.paused = options.repo.config.paused ?? []
    for (const [address, id] of Object.entries(options.repo.config.knownPeers ?? {})) this.dialedIds.set(address, id)
    this.network = new PeerNetwork(options.repo, {
      emit: (e) => this.emit(e),
      ...(options.progress ? { progress: options.progress } : {}),
      ...(options.progressDone ? { progressDone: options.progressDone } : {})
    })
  }

  /** Records an event and logs its lines. */
  private emit(event: NodeEventBody): void {
    this.events.emit(event)
    for (const line of this.logLines.lines(event)) this.options.log(line)
  }

  /** A line from the node or a layer below it, as an event. */
  private readonly notice = (message: string): void => this.emit({ type: 'notice', message })

  /** Starts listening (if asked) and dialling every configured peer. */
  static async start(options: ServiceOptions): Promise<FolderService> {
    const service = new FolderService(options)
    if (options.unwatched === true) options.repo.followChanges(new ChangedPaths())
    if (options.listen !== undefined) {
      service.listener = await listen({
        address: options.listen,
        key: options.repo.config.key,
        session: service.sessionOptions(),
        log: service.notice,
        onSession: (session, remote) => {
          if (service.stopped || service.isPaused(session.remotePeerId)) void session.close()
          else service.network.attach(session, remote, false)
        }
      })
    }
    for (const peer of options.peers ?? []) service.dialers.push(service.dial(peer))
    return service
  }

  /** True once the folder watch has started: its commits asked for `changedOnly` look only where the watcher saw changes. */
  get watching(): boolean {
    return this.watch !== undefined
  }

  /** The bound listen address (with the real port), if listening. */
  get listenAddress(): PeerAddress | undefined {
    return this.listener?.address
  }

  /** Connects once to `peer` and attaches the session; errors are the caller's. */
  async connectOnce(peer: PeerAddress): Promise<Session> {
    const session = await this.open(peer)
    if (session.remotePeerId === this.options.repo.config.peerId) {
      await session.close()
      throw new UsageError(`${formatAddress(peer)} is this folder itself, not a peer`)
    }
    if (this.network.attach(session, formatAddress(peer), true)) return session
    // A running node already has a session with that peer and keeps it
    // (attach closed the new one): sync over that one.
    const live = this.network.sessionOf(session.remotePeerId)
    if (live === undefined) throw new SessionClosedError('the peer closed the connection before we were in sync')
    return live
  }

  /**
   * The live session with the peer at `address`, when this node dialled it
   * there (or learnt its id from such a dial). `--from` uses it instead of a
   * second connection, which the peer would take as a duplicate session.
   */
  sessionAt(address: PeerAddress): Session | undefined {
    const id = this.dialedIds.get(formatAddress(address))
    return id === undefined ? undefined : this.network.sessionOf(id)
  }

  /** A TLS session with `peer`, not yet attached; given up when the service stops. */
  private open(peer: PeerAddress): Promise<Session> {
    return connect({ address: peer, key: this.options.repo.config.key, session: this.sessionOptions(), signal: this.stopping.signal })
  }

  /**
   * Starts watching the share folder: commits pending changes now, then after
   * every quiet moment, and announces each new head to the peers.
   */
  async startWatch(settings: WatchSettings = {}): Promise<void> {
    const settleMs = settings.settleMs ?? 400
    const repo = this.options.repo
    let rules: IgnoreRules = await repo.ignoreRules()
    const retry = new Backoff(250, 30_000)
    let lastWait = ''
    // Files that cannot be read are left out of each commit (their last
    // committed versions stay), said once, and looked at again later, since
    // a permission change may not show up as a change in the folder.
    const unreadableRetry = new Backoff(1_000, 60_000)
    let lastUnreadable = ''
    let recheck = false
    const recheckLater = (): void => {
      if (recheck) return
      recheck = true
      void this.sleep(unreadableRetry.next()).then(() => {
        recheck = false
        if (!this.stopped) this.watch?.poke()
      })
    }
    /**
     * Commits and announces; on failure, says so once, backs off and
     * resolves false. With `smallFirst`, files of LATER_BYTES or more
     * that must be read wait for a second commit, so the rest reaches the
     * peers without waiting for them to be hashed.
     */
    const attempt = async (smallFirst = false): Promise<boolean> => {
      try {
        rules = await repo.ignoreRules()
        // A set: with smallFirst, both commits meet the same unreadable files.
        const unreadable = new Set<string>()
        const onSkip: NonNullable<Progress['onSkip']> = (path, why, kind) => { if (kind === 'unreadable') unreadable.add(`${path} (${why})`) }
        let deferred = false
        const later = (_path: string, size: number): boolean => {
          if (size < LATER_BYTES) return false
          deferred = true
          return true
        }
        await this.commitAndAnnounce(undefined, { onSkip, changedOnly: true, ...(smallFirst ? { later } : {}) })
        if (deferred) await this.commitAndAnnounce(undefined, { onSkip, changedOnly: true })
        retry.reset()
        lastWait = ''
        const said = [...unreadable].sort().join(', ')
        if (said !== lastUnreadable && said !== '') this.notice(`skipped what cannot be read, keeping its last committed version: ${said}`)
        lastUnreadable = said
        if (said === '') unreadableRetry.reset()
        else recheckLater()
        return true
      } catch (err) {
        // A file that changed while read, vanished or cannot be read (or any
        // other failure): try again later, backing off so a lasting problem
        // does not make the watch rescan the folder five times a second.
        const still = hasCode(err, 'LEFT_FILE_CHANGED') || hasCode(err, 'LEFT_FILE_ACCESS')
        const line = still ? `waiting: ${errorMessage(err)}` : `cannot commit: ${errorMessage(err)}; will retry`
        if (line !== lastWait) this.notice(line)
        lastWait = line
        await this.sleep(retry.next())
        return this.stopped
      }
    }
    // The watcher runs before the first commit scans the whole folder, so
    // every change is either in that scan or reported after it; from then
    // on a commit looks only where changes were reported.
    if (this.stopped) return
    const changes = new ChangedPaths()
    let started!: () => void
    const startup = new Promise<void>((resolve) => (started = resolve))
    const errorsSaid = new Set<string>()
    let watchedRules = rules.text
    const open = (): FolderWatch => watchFolder({
      share: repo.share,
      quietMs: settings.quietMs ?? 200,
      maxWaitMs: 10_000,
      ignores: (path, isDir) => rules.ignores(path, isDir),
      onChange: (path) => changes.add(path),
      onError: (err) => {
        // What the watcher may have missed, a whole scan finds.
        changes.everything()
        if (outOfWatches(err)) this.watchDegraded = true
        this.watch?.poke()
        const line = watchErrorLine(err)
        if (!errorsSaid.has(line)) this.notice(line)
        errorsSaid.add(line)
      },
      onQuiet: async (paths) => {
        await startup
        if (this.stopped) return true
        const seen = await this.look(paths, settleMs)
        if (seen.unsettled) return false
        // A path gone may be a big file moved: split, its old path would be
        // deleted on the peers a moment before the new one is added.
        const done = await attempt(seen.big && seen.small && !seen.gone)
        // The watcher leaves ignored folders unwatched: once the rules
        // change, it must look again.
        if (rules.text !== watchedRules) this.loops.push(rewatch())
        return done
      }
    })
    const rewatch = async (): Promise<void> => {
      watchedRules = rules.text
      await this.watch?.close()
      if (this.stopped) return
      this.watch = open()
      await this.watch.ready
      changes.everything()
      this.watch.poke()
    }
    this.watch = open()
    let startedClean = false
    try {
      await this.watch.ready
      if (this.stopped) return
      repo.followChanges(changes)
      startedClean = await attempt()
    } finally {
      started()
    }
    if (this.stopped) return
    this.loops.push(this.retentionLoop(), this.fullScanLoop(changes))
    // Pending changes that could not be committed at start are retried even
    // if nothing else happens in the folder.
    if (!startedClean) this.watch.poke()
  }

  /** Has the watch's next commit scan the whole folder every FULL_SCAN_EVERY_MS, or every FULL_SCAN_DEGRADED_MS once watches ran out. */
  private async fullScanLoop(changes: ChangedPaths): Promise<void> {
    let last = Date.now()
    for (;;) {
      await this.sleep(FULL_SCAN_DEGRADED_MS)
      if (this.stopped) return
      if (!this.watchDegraded && Date.now() - last < FULL_SCAN_EVERY_MS) continue
      last = Date.now()
      changes.everything()
      this.watch?.poke()
    }
  }

  /** Commits local changes, if any, and tells every peer at once. */
  async commitAndAnnounce(message?: string, progress: Progress = {}): Promise<CommitResult | undefined> {
    const result = await this.network.activity.during('committing', () => this.options.repo.commit(message, progress))
    if (result === undefined) return undefined
    const s = result.summary
    this.emit({ type: 'commit', commit: result.cid.toString(), message: result.message, ...s })
    await this.network.broadcast()
    return result
  }

  /**
   * Applies the retention policy of the config (`left forget --remember`)
   * now and every RETENTION_EVERY_MS, and frees what it forgot with gc.
   * Read afresh each time, so a policy remembered while watching holds.
   */
  private async retentionLoop(): Promise<void> {
    const repo = this.options.repo
    while (!this.stopped) {
      const policy = repo.config.retention
      if (policy !== undefined) {
        try {
          const { forgotten } = await repo.forget(policy)
          if (forgotten.length > 0) {
            const { removed } = await repo.gc()
            this.notice(`retention policy: forgot the content of ${forgotten.length} old commit${forgotten.length === 1 ? '' : 's'} (their history stays); removed ${removed} objects`)
          }
        } catch (err) {
          this.notice(`cannot apply the retention policy: ${errorMessage(err)}`)
        }
      }
      await this.sleep(RETENTION_EVERY_MS)
    }
  }

  /**
   * Stops syncing with `target` (a peer id, `host:port` or host; every peer
   * when undefined) until `resume`, and remembers that in the config. Live
   * sessions with it close; local commits go on.
   */
  async pause(target?: string): Promise<void> {
    this.paused = withPaused(this.paused, target)
    await this.options.repo.remember({ paused: this.paused })
    this.network.closePeers((id) => this.isPaused(id))
    this.emit({ type: 'peer-paused', peer: target ?? 'all peers' })
  }

  /** Syncs with `target` again (every peer when undefined), and redials at once. */
  async resume(target?: string): Promise<void> {
    this.paused = withResumed(this.paused, target)
    await this.options.repo.remember({ paused: this.paused })
    this.sleepers.wakeAll()
    this.emit({ type: 'peer-resumed', peer: target ?? 'all peers' })
  }

  /** The pause list in force. */
  get pausedPeers(): readonly string[] {
    return this.paused
  }

  /**
   * Records that `address` is peer `id`, in the config too, so that pausing
   * the address also holds for the sessions that peer opens to us, now and
   * after a restart. A session it opened before we knew closes now.
   */
  private learnId(address: string, id: string): void {
    if (this.dialedIds.get(address) === id) return
    this.dialedIds.set(address, id)
    this.options.repo.remember({ knownPeers: Object.fromEntries(this.dialedIds) })
      .catch((err: unknown) => this.notice(`cannot remember peer ${id} at ${address}: ${errorMessage(err)}`))
    if (this.isPaused(id, address)) this.network.closePeers((peer) => peer === id)
  }

  /**
   * True when the peer `peerId`, reached at `address`, is paused. A session
   * a peer opened to us comes from a passing address, so an address entry
   * matches it only through the id a dial found there (`learnId`).
   */
  private isPaused(peerId: string | undefined, address?: string): boolean {
    const addresses = address === undefined ? [] : [address]
    for (const [a, id] of this.dialedIds) if (id === peerId) addresses.push(a)
    return isPausedPeer(this.paused, peerId, addresses)
  }

  /**
   * What this node is doing and how each peer stands against our head:
   * every peer seen since start, and configured peers never reached.
   */
  async status(): Promise<NodeStatus> {
    const repo = this.options.repo
    const head = await repo.head()
    const records = this.network.peerRecords()
    const peers: PeerStatus[] = []
    const configured = new Map([...this.dialedIds].map(([address, id]) => [id, address]))
    // A peer that dialled us first shows the address we know it by.
    for (const r of records) {
      const address = configured.get(r.id) ?? r.address
      peers.push({ ...r, address, paused: this.isPaused(r.id, address), sync: await relation(repo, head, r.head) })
    }
    for (const address of (this.options.peers ?? []).map(formatAddress)) {
      if (peers.some((p) => p.address === address)) continue
      peers.push({ id: undefined, address, online: false, paused: this.isPaused(undefined, address), since: this.startedAt, lastSeen: undefined, head: null, transfer: undefined, received: 0, sent: 0, sync: 'unknown' })
    }
    return {
      mode: this.watching ? 'watch' : 'serve',
      activity: this.network.activity.state,
      startedAt: this.startedAt,
      listen: this.listener === undefined ? undefined : formatAddress(this.listener.address),
      head, peers, paused: this.paused
    }
  }

  /** Stops watching, dialling and listening, and closes every session (with bye). */
  async stop(): Promise<void> {
    this.stopped = true
    this.stopping.abort()
    this.sleepers.wakeAll()
    await this.watch?.close()
    this.options.repo.followChanges(undefined)
    // Sessions first: a listener only finishes closing once its connections have.
    await this.network.closeAll()
    await this.listener?.close()
    await Promise.all([...this.dialers, ...this.loops])
    // Let an in-progress commit or merge finish before the store closes.
    await this.options.repo.idle()
  }

  private sessionOptions(): TransportSessionOptions {
    const repo = this.options.repo
    return {
      store: repo.objects,
      peerId: repo.config.peerId,
      head: async () => {
        if (this.options.commitOnConnect === true && !this.stopped) {
          await this.commitAndAnnounce().catch((err: unknown) => this.notice(`cannot commit local changes: ${errorMessage(err)}`))
        }
        return repo.head()
      },
      log: this.notice,
      arriving: (cid, peerFetching) => this.network.arrivals.arriving(cid, peerFetching),
      ...(this.options.timeoutMs !== undefined ? { timeoutMs: this.options.timeoutMs } : {})
    }
  }

  /** Keeps one session with `peer` while the service runs. */
  private async dial(peer: PeerAddress): Promise<void> {
    const label = formatAddress(peer)
    const min = this.options.minRetryMs ?? 500
    const max = this.options.maxRetryMs ?? 30_000
    const retry = new Backoff(min, max, 0.25)
    let lastError = ''
    // A paused address whose peer is not known yet is dialled once to learn it.
    let knownId = this.dialedIds.get(label)
    while (!this.stopped) {
      if (knownId !== undefined && this.isPaused(knownId, label)) {
        // `resume` wakes every sleeper.
        await this.sleep(max)
        continue
      }
      if (knownId !== undefined && this.network.hasPeer(knownId)) {
        // The peer dialled us first; keep that session and check back later.
        await this.sleep(max)
        continue
      }
      try {
        const session = await this.open(peer)
        knownId = session.remotePeerId
        this.learnId(label, knownId)
        if (this.stopped) {
          await session.close()
          break
        }
        if (this.isPaused(knownId, label)) {
          await session.close()
          continue
        }
        if (knownId === this.options.repo.config.peerId) {
          this.notice(`${label} is this peer itself; not dialling it`)
          await session.close()
          return
        }
        const closed = new Promise<void>((resolve) => session.once('close', () => resolve()))
        const attached = this.network.attach(session, label, true)
        const since = Date.now()
        await closed
        // Back off again unless the session lasted: a peer that keeps
        // dropping us at once (it still holds an older session) is not
        // redialled twice a second.
        if (attached && Date.now() - since >= STABLE_MS) {
          retry.reset()
          lastError = ''
        }
      } catch (err) {
        if (this.stopped) break
        const line = errorMessage(err)
        // Say it once, not on every retry.
        if (line !== lastError) this.notice(`cannot sync with ${label}: ${line}; retrying`)
        lastError = line
      }
      await this.sleep(retry.next())
    }
  }

  private sleep(ms: number): Promise<void> {
    return this.stopped ? Promise.resolve() : this.sleepers.sleep(ms)
  }

  /**
   * What the changed files are like: `unsettled` when one was modified
   * within `settleMs` (it may still be being written), and whether there
   * are files of LATER_BYTES or more (`big`), smaller ones (`small`), and
   * paths that are gone (`gone`).
   */
  private async look(paths: ReadonlySet<string>, settleMs: number): Promise<{ unsettled: boolean; big: boolean; small: boolean; gone: boolean }> {
    const now = Date.now()
    const seen = { unsettled: false, big: false, small: false, gone: false }
    for (const p of paths) {
      try {
        const st = await lstat(join(this.options.repo.share, p))
        if (!st.isFile()) continue
        if (now - st.mtimeMs < settleMs) return { ...seen, unsettled: true }
        if (st.size >= LATER_BYTES) seen.big = true
        else seen.small = true
      } catch {
        // Gone again: nothing to wait for.
        seen.gone = true
      }
    }
    return seen
  }
}

/**
 * A watcher error as a line for the log. Running out of the system's
 * watches fails once per file or folder: said once, with what to do.
 */
function watchErrorLine(err: unknown): string {
  if (outOfWatches(err)) {
    return `cannot watch every file: the system's limit on watches is reached (on Linux, raise fs.inotify.max_user_watches); a whole scan every ${FULL_SCAN_DEGRADED_MS / 1000} s finds changes instead`
  }
  return `watch error: ${errorMessage(err)}`
}

/** True for the error of a watch the system has no room for (inotify's limit, or open files). */
function outOfWatches(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOSPC' || code === 'EMFILE'
}
