/**
 * A peer session over any duplex byte stream (TLS socket, TCP socket, or an
 * in-process pair in tests): the protocol state machine. It owns the framing
 * of the stream, checks every inbound message before acting on it, serves
 * the peer's wants from the object space (serve.ts), and batches this side's
 * requests for the history and content fetches (fetch.ts, content.ts)
 * within a bounded window.
 *
 *   awaiting-hello --hello--> open --bye / error / EOF / timeout--> closed
 *
 * Both sides are equal: each sends hello first, then either may fetch.
 */
import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { CID } from 'multiformats/cid'
import { cidKey } from '../object/cid.js'
import { LeftError, MissingObjectError, hasCode, ProtocolError, SessionClosedError, TimeoutError } from '../errors.js'
import type { ObjectStore } from '../store/index.js'
import { unpackBlock } from './compress.js'
import { type BlockSource, type FetchOptions, type FetchResult, fetchClosure } from './fetch.js'
import { FrameDecoder, encodeFrame } from './frame.js'
import { MAX_WANT, type Message, PROTOCOL_VERSION, decodeMessage, encodeMessage } from './messages.js'
import { type Arriving, BlockServer } from './serve.js'

/** Default stall timeout in milliseconds: how long the peer may stay silent while we wait on it. */
export const DEFAULT_TIMEOUT_MS = 30_000

/** Default request window: most CIDs wanted and not yet answered. */
export const DEFAULT_WINDOW = 256

/**
 * Heartbeat: a peer with a head re-sends it after this long without sending
 * anything, and a peer with a head that stays silent for HEARTBEAT_LIMIT
 * heartbeats is taken for gone (power loss, pulled cable), so a dead
 * connection never blocks a reconnect for long.
 */
export const DEFAULT_HEARTBEAT_MS = 15_000
const HEARTBEAT_LIMIT = 4

/** How long a graceful close waits for the peer to hang up before cutting the stream. */
const CLOSE_GRACE_MS = 2_000

/** The part of the store a session uses: reads to serve, writes to fetch. */
export type SessionStore = Pick<ObjectStore, 'get' | 'has' | 'hasMany' | 'write' | 'stage' | 'getStaged'>

/** What a session needs from its owner. */
export interface SessionOptions {
  readonly store: SessionStore
  /** This peer's id, sent in the hello. */
  readonly peerId: string
  /** This peer's current head, read once for the hello. */
  readonly head?: () => CID | undefined | Promise<CID | undefined>
  /** Receives one line per notable event (protocol errors, timeouts). */
  readonly log?: (line: string) => void
  /** Stall timeout in ms (default DEFAULT_TIMEOUT_MS); applies while awaiting the hello, a block, or a drain. */
  readonly timeoutMs?: number
  /** Request window (default DEFAULT_WINDOW). */
  readonly window?: number
  /** Heartbeat interval in ms (default DEFAULT_HEARTBEAT_MS). */
  readonly heartbeatMs?: number
  /** How log lines name the peer before its hello, such as its address. */
  readonly label?: string
  /** Objects on their way here, whose wants are held rather than answered `missing` (serve.ts). */
  readonly arriving?: Arriving
}

/** Events of a session. `close` fires once; its error is undefined for an orderly close. */
export interface SessionEvents {
  head: [cid: CID]
  close: [err: LeftError | undefined]
}

/** Counters, mostly for tests and progress displays. */
export interface SessionStats {
  /** `want` messages sent. */
  readonly wants: number
  /** CIDs asked for in those messages. */
  readonly wanted: number
  /** Blocks received. */
  readonly received: number
  /** Blocks sent. */
  readonly served: number
  /** `missing` answers sent. */
  readonly missing: number
  /** Frame bytes received and sent (headers included, TLS records not). */
  readonly bytesIn: number
  readonly bytesOut: number
}

interface Request {
  readonly cid: CID
  readonly promise: Promise<Uint8Array>
  readonly resolve: (bytes: Uint8Array | Promise<Uint8Array>) => void
  readonly reject: (err: unknown) => void
  sent: boolean
}

/**
 * Starts a session on `stream`: sends our hello and resolves once the peer's
 * hello has arrived and checked out. Rejects with ProtocolError, TimeoutError
 * or SessionClosedError (and destroys the stream) otherwise. The peer's head,
 * if any, is also emitted as a `head` event on the next turn of the event
 * loop, after the caller has had a chance to add listeners.
 */
export async function openSession(stream: Duplex, options: SessionOptions): Promise<Session> {
  const head = (await options.head?.()) ?? null
  const session = new Session(stream, options, head)
  await session.ready
  return session
}

/** One live connection to a peer. Create with `openSession` (or tls.ts `connect`/`listen`). */
export class Session extends EventEmitter<SessionEvents> implements BlockSource {
  /** Resolves when the hello exchange completes. */
  readonly ready: Promise<void>
  private state: 'hello' | 'open' | 'closed' = 'hello'
  private peer = ''
  private head: CID | null = null
  /** The head whose content the peer said it is fetching, if any. */
  private fetchingHead: CID | null = null
  /** The head we last told the peer we are fetching. */
  private sentFetching: CID | null = null
  /** The head we last told the peer about (hello or `head`). */
  private sentHead: CID | null
  private label: string
  private readonly log: (line: string) => void
  private readonly timeoutMs: number
  private readonly window: number
  private readonly decoder = new FrameDecoder()
  private readonly server: BlockServer
  private readonly requests = new Map<string, Request>()
  private queue: Request[] = []
  private inFlight = 0
  private flushScheduled = false
  private timer: NodeJS.Timeout | undefined
  private readonly closed: Promise<void>
  private settleReady: { resolve: () => void; reject: (err: unknown) => void } | undefined
  private counts = { wants: 0, wanted: 0, received: 0, bytesIn: 0, bytesOut: 0 }
  private lastIn = Date.now()
  private lastAnswerAt = Date.now()
  private lastOut = Date.now()
  private heartbeat: NodeJS.Timeout | undefined
  private endedWith: LeftError | undefined

  /** Prefer `openSession`; the constructor sends the hello and starts reading. */
  constructor(private readonly stream: Duplex, private readonly options: SessionOptions, ourHead: CID | null) {
    super()
    this.label = options.label ?? 'peer'
    this.log = options.log ?? (() => {})
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.window = Math.max(1, Math.min(options.window ?? DEFAULT_WINDOW, 1024))
    this.ready = new Promise((resolve, reject) => { this.settleReady = { resolve, reject } })
    this.ready.catch(() => {}) // the owner awaits it; never an unhandled rejection
    this.closed = new Promise((resolve) => stream.once('close', resolve))
    this.server = new BlockServer(options.store, {
      send: (m) => this.send(m),
      drain: () => this.drain(),
      isOpen: () => this.state === 'open'
    }, (err) => this.finish(err), options.arriving === undefined ? undefined : (cid) => options.arriving!(cid, this.fetchingHead))
    // Late socket errors (after reading stopped) must not crash the process.
    stream.on('error', (err) => this.finish(err))
    this.sentHead = ourHead
    this.send({ t: 'hello', v: PROTOCOL_VERSION, peer: options.peerId, head: ourHead })
    this.armTimer()
    const beat = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS
    this.heartbeat = setInterval(() => this.beat(beat), beat)
    this.heartbeat.unref()
    void this.readLoop()
  }

  /** Sends a heartbeat when we have been quiet; ends a session whose peer went silent. */
  private beat(interval: number): void {
    if (this.state !== 'open') return
    const now = Date.now()
    if (this.head !== null && now - this.lastIn > HEARTBEAT_LIMIT * interval) {
      this.finish(new TimeoutError(`${this.label} sent nothing for ${now - this.lastIn} ms`))
      return
    }
    if (this.sentHead !== null && now - this.lastOut >= interval) this.send({ t: 'head', cid: this.sentHead })
  }

  /** The peer's id, from its hello. */
  get remotePeerId(): string {
    return this.peer
  }

  /** The peer's head: from its hello, then from each `head` it announced. Null if it has none. */
  get remoteHead(): CID | null {
    return this.head
  }

  /** The head whose content the peer is fetching, as it last said; null when it is not. */
  get remoteFetching(): CID | null {
    return this.fetchingHead
  }

  /** The head we last told the peer about, in our hello or an announcement. */
  get announcedHead(): CID | null {
    return this.sentHead
  }

  /** When the peer last sent anything (ms since the epoch): a heartbeat counts. */
  get lastSeen(): number {
    return this.lastIn
  }

  /**
   * When the peer last answered a request of ours (a `block` or a
   * `missing`), or when the session started: unlike lastSeen, heartbeats
   * and other chatter do not count.
   */
  get lastAnswer(): number {
    return this.lastAnswerAt
  }

  /** Why the session ended, when it ended on an error (a protocol violation, a timeout, a reset). */
  get closeError(): LeftError | undefined {
    return this.endedWith
  }

  /** True once the session has ended. */
  get isClosed(): boolean {
    return this.state === 'closed'
  }

  /** Counters of this session's traffic. */
  get stats(): SessionStats {
    return { ...this.counts, served: this.server.served, missing: this.server.missing }
  }

  /**
   * Fetches `cid`'s history, then the content of what it changes against
   * `options.base` (see fetchClosure), asking only for missing objects. A
   * wrong or invalid object also ends the session.
   */
  async fetch(cid: CID, options: FetchOptions = {}): Promise<FetchResult> {
    if (this.state !== 'open') throw new SessionClosedError('the session is not open')
    try {
      return await fetchClosure(cid, this.options.store, this, options)
    } catch (err) {
      // A peer that sends bad objects cannot be trusted with the rest.
      if (err instanceof ProtocolError || hasCode(err, 'LEFT_HASH_MISMATCH')) this.finish(err)
      throw err
    }
  }

  /** Tells the peer our head moved. A no-op on a closed session. */
  announce(cid: CID): void {
    this.sentHead = cid
    this.send({ t: 'head', cid })
  }

  /** Tells the peer which head's content we are fetching (null: none), unless it was the last thing we said of it. */
  announceFetching(cid: CID | null): void {
    if (cid === this.sentFetching || (cid !== null && this.sentFetching?.equals(cid) === true)) return
    this.sentFetching = cid
    this.send({ t: 'fetching', cid })
  }

  /** Ends the session at once on `err`, a fault of the peer's found outside the session (a wrong object). */
  fail(err: LeftError): void {
    this.finish(err)
  }

  /** Ends the session in order (bye, then end of stream); resolves when the stream is closed. */
  close(): Promise<void> {
    if (this.state !== 'closed') {
      this.send({ t: 'bye' })
      this.finish(undefined)
    }
    return this.closed
  }

  /** BlockSource: asks the peer for one object; requests are batched per tick and windowed. */
  request(cid: CID): Promise<Uint8Array> {
    if (this.state !== 'open') return Promise.reject(new SessionClosedError('the session is not open'))
    const key = cidKey(cid)
    const known = this.requests.get(key)
    if (known !== undefined) return known.promise
    let resolve!: Request['resolve']
    let reject!: (err: unknown) => void
    const promise = new Promise<Uint8Array>((res, rej) => { resolve = res; reject = rej })
    const req: Request = { cid, promise, resolve, reject, sent: false }
    this.requests.set(key, req)
    this.queue.push(req)
    if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => this.flush())
    }
    return promise
  }

  /** Sends queued requests as `want`s while the window has room. */
  private flush(): void {
    this.flushScheduled = false
    while (this.state === 'open' && this.queue.length > 0 && this.inFlight < this.window) {
      const batch = this.queue.splice(0, Math.min(this.window - this.inFlight, MAX_WANT))
      for (const r of batch) r.sent = true
      this.inFlight += batch.length
      this.counts.wants++
      this.counts.wanted += batch.length
      this.send({ t: 'want', cids: batch.map((r) => r.cid) })
    }
    this.armTimer()
  }

  private async readLoop(): Promise<void> {
    try {
      for await (const piece of this.stream) {
        // After an orderly close, keep reading (and ignoring) until the peer
        // hangs up: returning early would destroy the stream and could drop our bye.
        if (this.state === 'closed') continue
        this.counts.bytesIn += (piece as Buffer).length
        this.lastIn = Date.now()
        for (const frame of this.decoder.push(piece as Buffer)) {
          this.timer?.refresh()
          await this.handle(decodeMessage(frame))
          if (this.isClosed) break
        }
        this.armTimer()
      }
      if (this.state === 'closed') return
      this.decoder.finish()
      this.finish(new SessionClosedError('the peer hung up without bye'))
    } catch (err) {
      this.finish(err)
    }
  }

  private async handle(m: Message): Promise<void> {
    if (this.state === 'hello') {
      if (m.t !== 'hello') throw new ProtocolError(`expected hello, got ${m.t}`)
      this.peer = m.peer
      this.head = m.head
      this.label = `${this.label} (${m.peer})`
      this.state = 'open'
      this.armTimer()
      this.settleReady?.resolve()
      // Let the owner attach listeners before the first event or message.
      await new Promise((resolve) => setImmediate(resolve))
      if (this.state === 'open' && this.head !== null) this.emit('head', this.head)
      return
    }
    switch (m.t) {
      case 'hello': throw new ProtocolError('second hello')
      case 'want': this.server.enqueue(m.cids); return
      case 'head': this.head = m.cid; this.emit('head', m.cid); return
      case 'fetching': this.fetchingHead = m.cid; return
      case 'bye': this.finish(undefined); return
      case 'block':
        // Not awaited: the next frames are read while this one inflates in
        // the thread pool. A block that does not inflate rejects its request
        // with ProtocolError, and fetch() then ends the session.
        this.counts.received++
        this.answered(m.cid, 'block').resolve(unpackBlock(m.cid, m.data, m.z))
        return
      case 'missing':
        this.answered(m.cid, 'missing').reject(new MissingObjectError(m.cid.toString()))
    }
  }

  /** Takes the in-flight request a `block`/`missing` answers; anything unasked for is a protocol error. */
  private answered(cid: CID, what: string): Request {
    const key = cidKey(cid)
    const req = this.requests.get(key)
    if (req === undefined || !req.sent) throw new ProtocolError(`peer sent an unrequested ${what} for ${cid}`)
    this.requests.delete(key)
    this.inFlight--
    this.lastAnswerAt = Date.now()
    if (this.queue.length > 0) this.flush()
    else this.armTimer()
    return req
  }

  private send(m: Message): boolean {
    if (this.state === 'closed' || this.stream.destroyed || this.stream.writableEnded) return false
    const frame = encodeFrame(encodeMessage(m))
    this.counts.bytesOut += frame.length
    this.lastOut = Date.now()
    return this.stream.write(frame)
  }

  /** Waits for the socket to drain; a peer that stops reading for the timeout ends the session. */
  private drain(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.stream.off('drain', done)
        this.stream.off('close', done)
        resolve()
      }
      const timer = setTimeout(() => {
        done()
        this.finish(new TimeoutError(`${this.label} stopped reading for ${this.timeoutMs} ms`))
      }, this.timeoutMs)
      this.stream.on('drain', done)
      this.stream.on('close', done)
    })
  }

  /**
   * The stall timer runs only while we wait on the peer: for its hello, for
   * answers, or for the rest of a frame it has started. The last case bounds
   * how long a peer can make us hold a partial frame (up to MAX_FRAME bytes).
   */
  private armTimer(): void {
    const waiting = this.state === 'hello' || (this.state === 'open' && (this.inFlight > 0 || this.decoder.buffered > 0))
    if (!waiting) {
      clearTimeout(this.timer)
      this.timer = undefined
    } else if (this.timer === undefined) {
      const what = this.state === 'hello' ? 'sent no hello' : this.inFlight > 0 ? 'sent no objects' : 'left a frame unfinished'
      this.timer = setTimeout(() => this.finish(new TimeoutError(`${this.label} ${what} for ${this.timeoutMs} ms`)), this.timeoutMs)
      this.timer.unref()
    }
  }

  /** Ends the session once: rejects waiting requests, stops serving, closes the stream, emits `close`. */
  private finish(cause: unknown): void {
    if (this.state === 'closed') return
    const err = cause === undefined ? undefined : asLeftError(cause)
    this.state = 'closed'
    this.endedWith = err
    clearTimeout(this.timer)
    clearInterval(this.heartbeat)
    this.server.stop()
    const reason = err ?? new SessionClosedError('the session was closed')
    for (const r of this.requests.values()) r.reject(reason)
    this.requests.clear()
    this.queue = []
    this.settleReady?.reject(reason)
    if (err !== undefined) {
      this.log(`session with ${this.label} ended: ${err.code}: ${err.message}`)
      this.stream.destroy()
    } else {
      this.stream.end()
      setTimeout(() => this.stream.destroy(), CLOSE_GRACE_MS).unref()
    }
    this.emit('close', err)
  }
}

/** Stream failures (resets, premature close) become SessionClosedError; LEFT errors pass through. */
function asLeftError(err: unknown): LeftError {
  if (err instanceof LeftError) return err
  const code = (err as { code?: unknown } | null)?.code
  return new SessionClosedError(typeof code === 'string' ? code : err instanceof Error ? err.message : String(err))
}
