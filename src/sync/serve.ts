/**
 * The serving half of a session: answers the peer's `want`s from the object
 * space in request order, looking up READ_AHEAD objects at a time and
 * waiting for the socket to drain whenever it reports a full buffer. So
 * memory stays bounded (READ_AHEAD objects plus the socket buffer) however
 * many objects the peer asks for, and the queue of unanswered wants is
 * capped so a peer cannot make it grow without limit.
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

/** Serves wanted objects in request order. Only the object space is served, never staging. */
export class BlockServer {
  /** Blocks sent. */
  served = 0
  /** `missing` answers sent. */
  missing = 0
  private readonly queue: CID[] = []
  private running = false
  private readonly missingBudget = new TokenBucket(MISSING_BURST, MISSING_PER_SECOND, Date.now())

  constructor(
    private readonly store: Pick<ObjectStore, 'get'>,
    private readonly sink: ServeSink,
    private readonly fail: (err: unknown) => void
  ) {}

  /** Queues validated CIDs for serving. Throws ProtocolError when the peer exceeds MAX_SERVE_QUEUE. */
  enqueue(cids: readonly CID[]): void {
    if (this.queue.length + cids.length > MAX_SERVE_QUEUE) {
      throw new ProtocolError(`peer has more than ${MAX_SERVE_QUEUE} wants outstanding`)
    }
    this.queue.push(...cids)
    if (!this.running) void this.run()
  }

  /** Drops everything queued (the session ended). */
  stop(): void {
    this.queue.length = 0
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
          // An object too big for the peer to accept is as good as missing;
          // sending it would only make the peer drop the connection.
          return bytes === undefined || bytes.length > maxObjectSize(cid) ? undefined : packBlock(bytes)
        }))
        if (!this.sink.isOpen()) return
        for (let i = 0; i < cids.length; i++) {
          if (!this.sink.isOpen()) return
          const cid = cids[i]!
          const block = packed[i]
          let ok: boolean
          if (block === undefined) {
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
