/**
 * The peer network of one folder: every live session, what each peer last
 * told us, and the rules that make peers converge without echo:
 *
 * 1. When a peer announces a head, fetch what we lack, integrate it, and
 *    if our head moved, announce it to every peer that does not have it.
 * 2. After every head handled, tell each peer our head unless it was the
 *    last head we told that peer. A peer that is behind fast-forwards; a
 *    peer that pushed to us learns that we took its head.
 * 3. Nothing is ever announced twice in a row on one session, so when all
 *    heads agree the exchange stops: there is no echo.
 *
 * Merges are deterministic, so peers that merge the same two heads make
 * the same commit and settle on it.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { CID } from 'multiformats/cid'
import { SessionClosedError, TimeoutError, errorMessage } from '../errors.js'
import type { BlockSource, FetchProgress } from '../sync/fetch.js'
import type { Session } from '../sync/session.js'
import { type SwarmPeer, SwarmSource, headOrder, rankPeers } from '../sync/swarm.js'
import { Arrivals } from './arrivals.js'
import { TokenBucket } from '../limit.js'
import { Activity } from './activity.js'
import { DELETIONS_LISTED, type NodeEventBody } from './events.js'
import { Sleepers } from './sleepers.js'
import type { Repo } from '../repo/repo.js'
import type { WriteAhead } from '../repo/write-ahead.js'

/** How often waitInSync looks at a session that only serves, to tell a slow peer from a stalled one. */
const SERVE_CHECK_MS = 1_000

/**
 * Remote heads that need a fetch and a merge, per peer: HEADS_BURST at once,
 * then HEADS_PER_SECOND. Watch commits at most every 200 ms, and heads
 * announced faster are coalesced to the latest, so an honest peer loses
 * nothing; a peer that announces new commits as fast as it can make them
 * gets a merge every 500 ms, not a busy core.
 */
const HEADS_BURST = 10
const HEADS_PER_SECOND = 2

/** Fetch progress becomes an event at most this often per peer. */
const PROGRESS_EVENT_MS = 250

/** What the network reports to whoever runs it. */
export interface NetworkEvents {
  /** Peer online/offline, fetch, file received, head moved, conflict kept. */
  emit(event: NodeEventBody): void
  /** Totals of the current fetch, for progress displays. */
  progress?(peer: string, progress: FetchProgress): void
  /** The current fetch from `peer` ended (successfully or not). */
  progressDone?(peer: string): void
}

/** What this node knows of one peer, live or gone (see `left status`). */
export interface PeerRecord {
  readonly id: string
  /** Where we reached it, or where it reached us from. */
  readonly address: string
  readonly online: boolean
  /** When it came online or went offline (ms since the epoch). */
  readonly since: number
  /** When it last sent anything. */
  readonly lastSeen: number
  /** Its head as it last told us; null when it has none. */
  readonly head: CID | null
  /** The fetch from it in progress, if any. */
  readonly transfer: (FetchProgress & { readonly startedAt: number }) | undefined
  /** Bytes received from it and sent to it since this node started, over every session (frames, before TLS). */
  readonly received: number
  readonly sent: number
}

/** The live sessions of one folder and the sync rules between them. */
export class PeerNetwork {
  /** The one live session per peer id. */
  private readonly peers = new Map<string, Session>()
  /** Every peer seen since start, for status. */
  private readonly records = new Map<string, {
    address: string; since: number; lastSeen: number; head: CID | null; transfer: PeerRecord['transfer']
    /** Traffic of its sessions that have ended. */
    received: number; sent: number
  }>()
  /** Counts changes, and wakes waitInSync on each (see changed()). */
  private version = 0
  private readonly waiters = new Sleepers()
  /** Head handling in progress, per session; closeAll waits for it. */
  private readonly busy = new Map<Session, Promise<void>>()
  /** Sessions whose head we are writing into the share folder now. */
  private readonly integrating = new Set<Session>()
  /** Content on its way here, for the sessions to hold wants on (sync/serve.ts). */
  readonly arrivals = new Arrivals()
  private readonly swarmPeers = new WeakMap<Session, SwarmPeer>()
  /** Heads whose content we are fetching, oldest first; the last is what peers are told. */
  private readonly fetchingHeads: CID[] = []

  constructor(private readonly repo: Repo, private readonly events: NetworkEvents, readonly activity = new Activity()) {}

  /** True while a session with peer `peerId` is live. */
  hasPeer(peerId: string): boolean {
    return this.peers.has(peerId)
  }

  /**
   * A source of objects spread over every connected peer, each asked in
   * turn until one has it: how checkout and restore run by the daemon
   * fetch old content.
   */
  contentSource(): BlockSource {
    return new SwarmSource((cid) => rankPeers(cid, [...this.peers.values()].map((s) => this.swarmPeer(s))))
  }

  /**
   * Where the content of `head` comes from (docs/protocol.md, "Which peers
   * are asked"). Peers that have it: the one that announced it, and every
   * other peer whose head it is. Peers still fetching it pass on what they
   * get, so for each object, the peer ranked first among those fetching
   * it (us included) asks the peers that have it, and the others ask that
   * peer (swarm.ts `headOrder`).
   */
  private headContent(head: CID, announcer: Session): BlockSource {
    return new SwarmSource((cid) => {
      // The announcer always, even once closed: its error then says why the fetch failed.
      const having: SwarmPeer[] = [this.swarmPeer(announcer)]
      const fetching: SwarmPeer[] = []
      for (const s of this.peers.values()) {
        if (s === announcer) continue
        if (s.remoteHead?.equals(head) ?? false) having.push(this.swarmPeer(s))
        else if (s.remoteFetching?.equals(head) ?? false) fetching.push(this.swarmPeer(s))
      }
      return headOrder(cid, this.repo.config.peerId, having, fetching)
    })
  }

  /**
   * Runs the fetch `fn` of `head` as one peers may ask for its objects while
   * it runs: they hear that we fetch it, and their wants for its objects are
   * held until the objects land (arrivals.ts). Inside the store's fetch
   * lock, so nothing is promised while gc runs.
   */
  private async passingOn<T>(head: CID, fn: () => Promise<T>): Promise<T> {
    this.arrivals.begin(head)
    this.fetchingHeads.push(head)
    try {
      this.tellFetching()
      return await fn()
    } finally {
      // Waiters first: nothing below may leave a want held.
      this.arrivals.end(head)
      const i = this.fetchingHeads.indexOf(head)
      if (i >= 0) this.fetchingHeads.splice(i, 1)
      this.tellFetching()
    }
  }

  /** Tells every peer the head whose content we are fetching now, or that we fetch none. */
  private tellFetching(session?: Session): void {
    const now = this.fetchingHeads.at(-1) ?? null
    for (const s of session === undefined ? this.peers.values() : [session]) s.announceFetching(now)
  }

  /** The swarm's view of `session`, made once: the swarm lists peers for every object it asks for. */
  private swarmPeer(session: Session): SwarmPeer {
    let peer = this.swarmPeers.get(session)
    if (peer === undefined) {
      peer = { id: session.remotePeerId, source: session, lastAnswer: () => session.lastAnswer, distrust: (err) => session.fail(err) }
      this.swarmPeers.set(session, peer)
    }
    return peer
  }

  /** The live session with peer `peerId`, if any. */
  sessionOf(peerId: string): Session | undefined {
    return this.peers.get(peerId)
  }

  /**
   * Starts handling a session whose hello has been exchanged; `dialed` says
   * which side opened it. Returns false (and closes the session) for a
   * connection to ourselves or a second connection to a peer we already have:
   * of two sessions between the same pair, both sides keep the one that the
   * peer with the smaller id dialed, so they agree without talking.
   */
  attach(session: Session, address: string, dialed: boolean): boolean {
    const peer = session.remotePeerId
    const self = this.repo.config.peerId
    const existing = this.peers.get(peer)
    if (peer === self || (existing !== undefined && !(dialed ? self < peer : peer < self))) {
      void session.close()
      return false
    }
    // Replacing a session is not the peer going offline: forget the old one quietly.
    this.peers.set(peer, session)
    if (existing !== undefined) void existing.close()
    else {
      this.events.emit({ type: 'peer-online', peer, address })
      // Traffic counts since this node started, across its absences.
      const before = this.records.get(peer)
      this.records.set(peer, { address, since: Date.now(), lastSeen: Date.now(), head: session.remoteHead, transfer: undefined, received: before?.received ?? 0, sent: before?.sent ?? 0 })
    }
    let pending: CID | undefined
    const budget = new TokenBucket(HEADS_BURST, HEADS_PER_SECOND, Date.now())
    let throttled = false
    const drain = async (): Promise<void> => {
      try {
        while (pending !== undefined && !session.isClosed) {
          const cid = pending
          pending = undefined
          // A head we have costs a lookup and needs only our answer: the
          // peer hears where we are. One we lack means a fetch and a merge,
          // so a peer gets a budget of those; past it, the head waits, and a
          // newer announcement replaces it, so its latest head is never lost.
          if (await this.settled(cid)) {
            await this.broadcast()
            continue
          }
          const wait = budget.take(Date.now())
          if (wait > 0) {
            if (!throttled) this.events.emit({ type: 'notice', message: `peer ${peer} announces new heads faster than ${HEADS_PER_SECOND} a second; taking its latest every ${1000 / HEADS_PER_SECOND} ms` })
            throttled = true
            pending ??= cid
            await sleep(wait)
            continue
          }
          await this.takeHead(session, cid)
        }
      } catch (err) {
        this.events.emit({ type: 'notice', message: `peer ${peer}: ${errorMessage(err)}` })
        void session.close()
      } finally {
        this.busy.delete(session)
        this.changed()
      }
    }
    const wake = (cid: CID): void => {
      pending = cid
      if (!this.busy.has(session)) this.busy.set(session, drain())
      this.changed()
    }
    session.on('head', wake)
    if (this.fetchingHeads.length > 0) this.tellFetching(session)
    session.on('close', () => {
      this.changed()
      const record = this.records.get(peer)
      if (record !== undefined) {
        record.received += session.stats.bytesIn
        record.sent += session.stats.bytesOut
      }
      if (this.peers.get(peer) !== session) return
      this.peers.delete(peer)
      if (record !== undefined) Object.assign(record, { since: Date.now(), lastSeen: session.lastSeen, head: session.remoteHead, transfer: undefined })
      this.events.emit({ type: 'peer-offline', peer })
    })
    if (session.remoteHead !== null) wake(session.remoteHead)
    return true
  }

  /**
   * True when `remote` needs no work: it is our head (a heartbeat, or the
   * answer to our own announcement), or one of our older heads (the peer is
   * behind). A set lookup, not a commit and a history walk, however often a
   * peer repeats it.
   */
  private async settled(remote: CID): Promise<boolean> {
    const head = await this.repo.head()
    return (head?.equals(remote) ?? false) || await this.repo.inHistory(remote)
  }

  /** Fetches and integrates a head that is not settled, then tells every peer where we are. */
  private async takeHead(session: Session, remote: CID): Promise<void> {
    const peer = session.remotePeerId
    const onWrite = (path: string, size: number): void => this.events.emit({ type: 'file-received', peer, path, size })
    // Most files are written as soon as their content is here (repo/write-ahead.ts says which wait).
    const ahead = await this.repo.writeAhead(remote, onWrite)
    let result: Awaited<ReturnType<Repo['integrate']>>
    try {
      // Always: a head stored as history only still needs its content here.
      await this.fetch(session, remote, ahead)
      const from = { source: this.headContent(remote, session), absentWhy: `and peer ${peer} does not have it either` }
      this.integrating.add(session)
      try {
        result = await this.activity.during('applying', () => this.repo.integrate(remote, onWrite, undefined, from))
      } finally {
        this.integrating.delete(session)
      }
    } finally {
      // Integrated or given up: what it wrote ahead is settled, or the folder's own now.
      await ahead.end()
    }
    for (const c of result.conflicts) this.events.emit({ type: 'conflict', path: c.path, copyPath: c.copyPath })
    for (const p of result.skipped) this.events.emit({ type: 'local-edit-kept', path: p })
    for (const p of result.editsKept) this.events.emit({ type: 'edit-kept', path: p })
    if (result.deleted.length > DELETIONS_LISTED) {
      this.events.emit({ type: 'files-deleted', peer, count: result.deleted.length, first: result.deleted.slice(0, 3) })
    } else {
      for (const p of result.deleted) this.events.emit({ type: 'file-deleted', peer, path: p })
    }
    if (result.mode !== 'none') this.events.emit({ type: 'head-moved', peer, mode: result.mode, head: String(result.after) })
    // Every peer, this one included, learns where we are now: a peer that
    // pushed to us waits for that answer to know we are in sync.
    await this.broadcast(result.after)
  }

  /**
   * Fetches the history of `remote` from `session`, and the content of what
   * its tree changes against our HEAD's, telling progress as it goes.
   */
  private async fetch(session: Session, remote: CID, ahead: WriteAhead): Promise<void> {
    const peer = session.remotePeerId
    const startedAt = Date.now()
    let lastEvent = 0
    let ok = false
    this.events.emit({ type: 'fetch-started', peer, head: remote.toString() })
    try {
      await this.activity.during('fetching', () => this.repo.fetching(async () => {
        try {
          await this.passingOn(remote, () => session.fetch(remote, {
            root: 'commit',
            base: ahead.base,
            contentSource: this.headContent(remote, session),
            onStored: (cids) => this.arrivals.stored(cids),
            onReady: (change) => ahead.ready(change),
            onProgress: (p) => {
              const record = this.records.get(peer)
              if (record !== undefined) record.transfer = { ...p, startedAt }
              this.events.progress?.(peer, p)
              this.changed()
              // Progress is an event a few times a second, not once per object.
              if (Date.now() - lastEvent >= PROGRESS_EVENT_MS) {
                lastEvent = Date.now()
                this.events.emit({ type: 'fetch-progress', peer, files: p.files, bytes: p.bytes, expectedBytes: p.expectedBytes })
              }
            }
          }))
        } catch (err) {
          // The head is not integrated this time: what is ready is not written now.
          ahead.stop()
          throw err
        } finally {
          // Inside the fetch lock (what is written ahead is reachable from no
          // ref yet, so gc must wait), but no longer telling peers we fetch.
          await ahead.settle()
        }
      }))
      ok = true
    } finally {
      const record = this.records.get(peer)
      if (record !== undefined) record.transfer = undefined
      this.events.progressDone?.(peer)
      this.events.emit({ type: 'fetch-finished', peer, ok })
    }
  }

  /** Closes the live session of every peer whose id `which` picks. */
  closePeers(which: (peerId: string) => boolean): void {
    for (const [id, session] of this.peers) if (which(id)) void session.close()
  }

  /** Every peer seen since this node started: the live ones first, then by id. */
  peerRecords(): PeerRecord[] {
    const out: PeerRecord[] = []
    for (const [id, r] of this.records) {
      const live = this.peers.get(id)
      out.push({
        id, address: r.address, online: live !== undefined, since: r.since,
        lastSeen: live?.lastSeen ?? r.lastSeen, head: live?.remoteHead ?? r.head, transfer: r.transfer,
        received: r.received + (live?.stats.bytesIn ?? 0), sent: r.sent + (live?.stats.bytesOut ?? 0)
      })
    }
    return out.sort((a, b) => Number(b.online) - Number(a.online) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** Tells every peer our head (read from the store unless given), unless it was the last thing we told that peer. */
  async broadcast(head?: CID): Promise<void> {
    head ??= await this.repo.head()
    this.changed()
    if (head === undefined) return
    for (const s of this.peers.values()) if (!(s.announcedHead?.equals(head) ?? false)) s.announce(head)
  }

  /**
   * Waits until `session`'s peer and we have the same head (or both none)
   * and nothing is in flight. Fails if the session closes first or nothing
   * moves for `stallMs`.
   */
  async waitInSync(session: Session, stallMs = 120_000): Promise<void> {
    let lastChange = Date.now()
    let lastState = ''
    for (;;) {
      // Taken before looking, so a change while we look is not missed.
      const seen = this.version
      // Say why it ended: a protocol violation or a timeout is not a hang-up.
      if (this.peers.get(session.remotePeerId) !== session) throw session.closeError ?? new SessionClosedError('the peer closed the connection before we were in sync')
      const head = await this.repo.head()
      const remote = session.remoteHead
      const { received, served } = session.stats
      const state = `${String(head)}|${String(remote)}|${this.busy.has(session)}|${received}|${served}`
      if (!this.busy.has(session) && (head === undefined ? remote === null : remote?.equals(head) ?? false)) return
      // Writing out what the peer sent is our work, not the peer stalling:
      // 200,000 files take minutes with no byte on the wire.
      if (state !== lastState || this.integrating.has(session)) {
        lastState = state
        lastChange = Date.now()
      } else if (Date.now() - lastChange > stallMs) {
        throw new TimeoutError('waiting for the peer to reach our head')
      }
      // Heads, head handling, fetches and closes wake us; a peer fetching
      // from us does not, so look again now and then to see it progress.
      if (this.version === seen) await this.waiters.sleep(Math.min(SERVE_CHECK_MS, stallMs))
    }
  }

  /** Something waitInSync looks at has changed. */
  private changed(): void {
    this.version++
    this.waiters.wakeAll()
  }

  /** Closes every session in order (bye first) and waits for head handling in progress to end. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.peers.values()].map((s) => s.close()))
    await Promise.all(this.busy.values())
  }
}
