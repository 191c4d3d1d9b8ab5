/**
 * Worker thread half of big-file hashing: reads a file and cuts it with
 * FastCDC, while the main thread hashes the chunks, builds nodes and writes
 * the store. Cutting is the bigger half (about twice SHA-256's time), so
 * this shares the work between the two threads as evenly as a split at
 * the chunk can. Given the file's previous version, the worker also
 * hashes the chunks it checks against that version, since it then cuts
 * only where the file changed (see GuidedCutter), and sends their digests.
 * Chunks travel back in batches (one transferred buffer each) under a
 * credit scheme: at most CREDITS batches are unacknowledged, which bounds
 * memory whatever the file size.
 *
 * Messages in:  a ChunkJob to start, 'ack' after each batch is consumed,
 *               { stop: id } when the main thread wants no more of a job
 *               (the first half of a split file, once the halves meet): the
 *               worker stays for the next file, where terminating it cost
 *               the next commit a new thread's start (about 40 ms of CPU).
 * Messages out: { id, bytes?, lengths, digests?, hashed?, cutBytes? } per
 *               batch, then { id, done: true } or { id, error: { code, message } },
 *               `id` being the job's.
 */
import { createHash } from 'node:crypto'
import { type FileHandle, open } from 'node:fs/promises'
import { parentPort } from 'node:worker_threads'
import { Cutter, DEFAULT_PARAMS, DIGEST_BYTES, GuidedCutter, type PreviousChunks } from '../chunk/fastcdc.js'
import { READ_NOFOLLOW } from './hash-file.js'
import { readUpTo } from './read-range.js'

/** Bytes read into each batch's buffer, after what the one before left over. */
export const BATCH_BYTES = 2 * 1024 * 1024
/** Unacknowledged batches allowed. */
export const CREDITS = 2

const port = parentPort!
let credits = CREDITS
let waiting: (() => void) | undefined
/** Jobs under way, by id, and those of them the main thread has stopped: each ends at its next step, sending nothing more. */
const running = new Set<number>()
const stopped = new Set<number>()

port.on('message', (m: unknown) => {
  if (m === 'ack') {
    credits++
    wake()
    return
  }
  if (typeof m === 'object' && m !== null && 'stop' in m) {
    const id = (m as { stop: number }).stop
    if (running.has(id)) stopped.add(id)
    wake()
    return
  }
  void run(m as ChunkJob)
})

function wake(): void {
  waiting?.()
  waiting = undefined
}

/** What to cut. */
export interface ChunkJob {
  /** Echoed in every message about this job, so none is taken for another's. */
  readonly id: number
  readonly path: string
  /** The file's previous version, to cut along. */
  readonly previous?: PreviousChunks
  /**
   * Start at byte `position` rather than 0, following the previous
   * version's chunk `next` there (a split at one of its boundaries).
   */
  readonly from?: { readonly position: number; readonly next: number }
  /**
   * Send every chunk's length and digest, all hashed here, and no bytes.
   * Without it, a batch whose chunks were all taken from the previous
   * version is sent that way too.
   */
  readonly digestsOnly?: boolean
}

/**
 * Cuts one buffer. With a previous version, `digests` holds the digest of
 * each chunk that `hashed` marks (1), and zeros for the others; `cutBytes`
 * counts the bytes of the chunks that were not taken from that version.
 */
type Cut = (buf: Uint8Array, ended: boolean) => { lengths: number[]; digests?: Uint8Array; hashed?: Uint8Array; cutBytes?: number }

function cutterFor(job: ChunkJob): Cut {
  if (job.previous === undefined) {
    const cutter = new Cutter()
    return (buf, ended) => ({ lengths: cutter.cut(buf, ended).map((c) => c.length) })
  }
  const cutter = new GuidedCutter(job.previous, DEFAULT_PARAMS, job.from?.next)
  return (buf, ended) => {
    const chunks = cutter.cut(buf, ended)
    const digests = new Uint8Array(chunks.length * DIGEST_BYTES)
    const hashed = new Uint8Array(chunks.length)
    chunks.forEach((c, i) => {
      const digest = c.digest ?? (job.digestsOnly === true ? createHash('sha256').update(c.bytes).digest() : undefined)
      if (digest === undefined) return
      digests.set(digest, i * DIGEST_BYTES)
      hashed[i] = 1
    })
    let cutBytes = 0
    for (const c of chunks) if (!c.reused) cutBytes += c.bytes.length
    return { lengths: chunks.map((c) => c.bytes.length), digests, hashed, cutBytes }
  }
}

/** Room kept in front of each read for the bytes the batch before left over: never more than one chunk's maximum. */
const CARRY_ROOM = DEFAULT_PARAMS.max

/** The next read: BATCH_BYTES at `position` into a new buffer, after CARRY_ROOM. */
interface Read {
  readonly raw: Uint8Array
  readonly length: number
}

async function readAt(fh: FileHandle, position: number): Promise<Read> {
  // Not zeroed first: every byte sent is read into it.
  const b = Buffer.allocUnsafeSlow(CARRY_ROOM + BATCH_BYTES)
  const raw = new Uint8Array(b.buffer, b.byteOffset, b.length)
  return { raw, length: await readUpTo(fh, position, raw, CARRY_ROOM, BATCH_BYTES) }
}

/**
 * Each batch is one buffer, read into just after room for the bytes the
 * last one left over, and sent whole: its chunks are views into it, so no
 * chunk is copied (copying them into a batch, and each read after the
 * leftover, took a sixth of this thread's time). The next read is under way
 * while this one is cut and hashed: waiting for each read took a third.
 */
async function run(job: ChunkJob): Promise<void> {
  // Batches of a job stopped before are never acknowledged: this one starts with every credit.
  credits = CREDITS
  running.add(job.id)
  try {
    const cut = cutterFor(job)
    const fh = await open(job.path, READ_NOFOLLOW)
    try {
      let carry = new Uint8Array(0)
      let position = job.from?.position ?? 0
      let next = readAt(fh, position)
      for (let ended = false; !ended;) {
        const { raw, length } = await next
        if (stopped.has(job.id)) return
        position += length
        ended = length < BATCH_BYTES
        if (!ended) {
          next = readAt(fh, position)
          // Awaited on the next turn; a failure before then must not go unhandled.
          next.catch(() => {})
        }
        const start = CARRY_ROOM - carry.length
        raw.set(carry, start)
        const buf = raw.subarray(start, CARRY_ROOM + length)
        const { lengths, digests, hashed, cutBytes } = cut(buf, ended)
        let used = 0
        for (const n of lengths) used += n
        carry = buf.slice(used)
        if (lengths.length === 0) continue
        if (credits === 0) await new Promise<void>((resolve) => { waiting = resolve })
        if (stopped.has(job.id)) return
        credits--
        // Chunks all taken from the previous version are most likely stored
        // already: the main thread reads again any that are not, rather than
        // take in (and collect) a buffer for each batch.
        if (job.digestsOnly === true || cutBytes === 0) {
          port.postMessage({ id: job.id, lengths, digests, hashed, cutBytes }, [digests!.buffer as ArrayBuffer])
          continue
        }
        const transfer = [raw.buffer as ArrayBuffer]
        if (digests !== undefined) transfer.push(digests.buffer as ArrayBuffer)
        port.postMessage({ id: job.id, bytes: buf.subarray(0, used), lengths, digests, hashed }, transfer)
      }
    } finally {
      await fh.close()
    }
    port.postMessage({ id: job.id, done: true })
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (!stopped.has(job.id)) port.postMessage({ id: job.id, error: { code: e.code, message: e.message } })
  } finally {
    running.delete(job.id)
    stopped.delete(job.id)
  }
}
