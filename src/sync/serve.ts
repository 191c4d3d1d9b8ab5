/**
 * The serving half of a session: answers the peer's `want`s from the object
 * space in request order, looking up READ_AHEAD objects at a time and
 * waiting for the socket to drain whenever it reports a full buffer. So
 * memory stays bounded (READ_AHEAD objects plus the socket buffer) however
 * many objects the peer asks for, and the queue of unanswered wants is
 * capped so a peer cannot make it grow without limit.
 *
 * A want for an object we lack, from a peer fetching the same head as we
 * do (see `arriving`), is held aside, not answered `missing`: once the
 * object lands, our fetch ends, or it has waited long enough, it goes back
 * in the queue and is answered from the store.
 * That is how a peer that is still fetching a head passes its chunks on
 * (docs/protocol.md, "Which peers are asked").
 *
 * A `block` answer costs the peer as much bandwidth as it costs us reads,
 * but a `missing` answer costs it almost nothing, so those are rate-limited:
 * a peer asking for objects we lack gets MISSING_PER_SECOND answers a
 * second after a burst, instead of a core spent on its requests.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { CID } from 'multiformats/cid'
import { ProtocolError } from '../errors.js'
import { TokenBucket } from '../limit.js'
import { RAW, cidKey } from '../object/cid.js'
import type { ObjectStore } from '../store/index.js'
import { maxObjectSize, packBlock } from './compress.js'
import type { Message } from './messages.js'

/**
 * Most wanted CIDs queued and not yet answered. A peer that follows the
 * protocol keeps at most its request window (256 for LEFT) outstanding.
 */
export const MAX_SERVE_QUEUE = 1024

/** `missing` answers sent at once before the rate limit applies, and the rate after. */
export const MISSING_BURST = 1024
export const MISSING_PER_SECOND = 1024

/** Objects looked up at once. */
const READ_AHEAD = 16

/** How the server talks back: the session's framed writer. */
export interface ServeSink {
  /** Writes a message; false means the socket buffer is full (wait for `drain`). */
  send(message: Message): boolean
  /** Resolves when the socket buffer has drained; rejects if the session ends first. */
  drain(): Promise<void>
  /** False once the session has ended. */
  isOpen(): boolean
}

/**
 * Whether an object we lack, wanted by a peer that says it fetches the head
 * `peerFetching`, is on its way: a promise that settles once it may be here
 * (stored, or our fetch of that head ended, or held long enough), or
 * undefined to answer at once. It never rejects.
 */
export type Arriving = (cid: CID, peerFetching: CID | null) => Promise<void> | undefined

/** Serves wanted objects in request order. Only the object space is served, never staging. */
export class BlockServer {
  /** Blocks sent. */
  served = 0
  /** `missing` answers sent. */
  missing = 0
  private readonly queue: CID[] = []
  /** Wants held until their object arrives, by cidKey; each counts as outstanding. */
  private readonly held = new Set<string>()
  /** Wants back from holding: answered from the store as they stand, never held twice. */
  private readonly released = new Set<string>()
  private running = false
  private stopped = false
  private readonly missingBudget = new TokenBucket(MISSING_BURST, MISSING_PER_SECOND, Date.now())

  constructor(
    private readonly store: Pick<ObjectStore, 'get' | 'has'>,
    private readonly sink: ServeSink,
    private readonly fail: (err: unknown) => void,
    /** Arriving, with the head the peer last said it fetches. */
    private readonly arriving?: (cid: CID) => Promise<void> | undefined
  ) {}

  /** Queues validated CIDs for serving. Throws ProtocolError when the peer exceeds MAX_SERVE_QUEUE. */
  enqueue(cids: readonly CID[]): void {
    if (this.queue.length + this.held.size + cids.length > MAX_SERVE_QUEUE) {
      throw new ProtocolError(`peer has more than ${MAX_SERVE_QUEUE} wants outstanding`)
    }
    this.queue.push(...cids)
    if (!this.running) void this.run()
  }

  /** Drops everything queued (the session ended). */
  stop(): void {
    this.stopped = true
    this.queue.length = 0
    this.held.clear()
    this.released.clear()
  }

  /** Holds the want for `cid` until `until` settles, then queues it again. */
  private hold(cid: CID, key: string, until: Promise<void>): void {
    this.held.add(key)
    const release = (): void => {
      if (this.stopped || !this.held.delete(key)) return
      this.released.add(key)
      this.queue.push(cid)
      if (!this.running) void this.run()
    }
    void until.then(release)
    // It may have landed between our lookup and the hold: look once more.
    void this.store.has(cid).then((here) => { if (here) release() }, () => {})
  }

  private async run(): Promise<void> {
    this.running = true
    try {
      while (this.sink.isOpen() && this.queue.length > 0) {
        // Look up and compress several objects at once (LevelDB reads and
        // deflate both run in the thread pool, so they overlap), then send
        // them in request order.
        const cids = this.queue.splice(0, READ_AHEAD)
        const packed = await Promise.all(cids.map(async (cid) => {
          const bytes = await this.store.get(cid)
          // Null: not here (it may be on its way). An object too big for the
          // peer to accept is as good as missing; sending it would only make
          // the peer drop the connection.
          if (bytes === undefined) return null
          return bytes.length > maxObjectSize(cid) ? undefined : packBlock(bytes)
        }))
        if (!this.sink.isOpen()) return
        for (let i = 0; i < cids.length; i++) {
          if (!this.sink.isOpen()) return
          const cid = cids[i]!
          const block = packed[i]
          let ok: boolean
          // The key only matters when something was held or may be: spare the encoding per object otherwise.
          const key = this.released.size > 0 || block === null ? cidKey(cid) : ''
          const wasHeld = this.released.size > 0 && this.released.delete(key)
          if (block === null && !wasHeld && cid.code === RAW && this.arriving !== undefined) {
            const until = this.held.has(key) ? undefined : this.arriving(cid)
            if (until !== undefined) {
              this.hold(cid, key, until)
              continue
            }
          }
          if (block === undefined || block === null) {
            for (let wait = this.missingBudget.take(Date.now()); wait > 0; wait = this.missingBudget.take(Date.now())) {
              await sleep(wait)
              if (!this.sink.isOpen()) return
            }
            ok = this.sink.send({ t: 'missing', cid })
            this.missing++
          } else {
            ok = this.sink.send({ t: 'block', cid, data: block.data, z: block.z })
            this.served++
          }
          if (!ok) await this.sink.drain()
        }
      }
    } catch (err) {
      this.fail(err)
    } finally {
      this.running = false
    }
  }
}
