/**
 * The main thread's side of the chunk workers (chunk-worker.ts). One worker
 * reads and cuts a big file while this thread hashes and stores it. A file
 * cut along its previous version is mostly hashing, which one core does at
 * one speed: so it is split at the first boundary of that version past its
 * middle, and a second worker hashes the second half at the same time. The
 * first worker's chunks are taken until one ends where a chunk of the
 * second half starts; every chunk is one a single cut would make (a
 * chunk's end depends only on its bytes), so from that offset on both cuts
 * agree, and the second half's are taken. A second half that is mostly new
 * bytes is given up at once (DECIDE_BYTES). The second half, and each batch
 * of the first that the previous version gave whole, come as lengths and
 * digests without bytes: the chunks the store lacks are read again from
 * the file, and checked against their digests.
 */
import type { FileHandle } from 'node:fs/promises'
import { Worker } from 'node:worker_threads'
import type { CID } from 'multiformats/cid'
import { DIGEST_BYTES, type PreviousChunks } from '../chunk/fastcdc.js'
import { RAW, cidFromDigest, cidOf, verifyBytes } from '../object/index.js'
import type { ChunkJob } from './chunk-worker.js'
import { readRange } from './read-range.js'

/** One chunk of a file, in order; `bytes` undefined when the store has it already. */
export interface FileChunk {
  readonly cid: CID
  readonly size: number
  readonly bytes: Uint8Array | undefined
}

/** Chunks in file order, and which half of a split file they come from (1 when it was not split). */
export interface ChunkBatch {
  readonly chunks: FileChunk[]
  readonly half: 1 | 2
}

/** Thrown when a chunk read again no longer matches its digest: the file changed while it was read. */
export class ChangedWhileRead extends Error {}

/** Files at least this big, cut along a previous version, are hashed in two halves. */
export const SPLIT_MIN_BYTES = 8 * 1024 * 1024

let first: Worker | undefined
let second: Worker | undefined
let busy = false

/** True when the workers can take a file (they take one at a time). */
export function workersFree(): boolean {
  return !busy
}

/**
 * Starts the workers a file of `size` bytes will need (the second one only
 * for a file cut along a previous version), so they are ready by the time
 * the file is: each takes about 0.1 s to start.
 */
export function startWorkers(size: number, along: boolean): void {
  first ??= newWorker()
  if (along && size >= SPLIT_MIN_BYTES) second ??= newWorker()
}

function newWorker(): Worker {
  const w = new Worker(new URL('./chunk-worker.js', import.meta.url))
  // Never keeps the process alive on its own.
  w.unref()
  return w
}

/**
 * The chunks of the file at `abs`, from the workers, in batches. With a
 * `previous` version, a file of SPLIT_MIN_BYTES or more is hashed in two
 * halves (see above). `has` says which chunks the store holds; `fh` reads
 * again those that came without bytes and that it lacks. Call only when
 * workersFree().
 */
export async function* chunksInWorkers(abs: string, fh: FileHandle, size: number, previous: PreviousChunks | undefined, has: (cids: readonly CID[]) => Promise<boolean[]>): AsyncGenerator<ChunkBatch> {
  busy = true
  try {
    const split = previous === undefined || size < SPLIT_MIN_BYTES ? undefined : splitAt(previous, size)
    const tail = split === undefined ? undefined : new SecondHalf(abs, previous!, split)
    try {
      let at = 0
      let joined = false
      for await (const batch of jobBatches((first ??= newWorker()), { path: abs, previous })) {
        let take = batch.lengths.length
        let end = at
        for (let i = 0; i < take; i++) {
          end += batch.lengths[i]!
          if (tail !== undefined && end >= split!.position && (await tail.startsAt(end))) {
            take = i + 1
            joined = true
          }
        }
        yield { chunks: await chunksOf(batch, at, fh, has, take), half: 1 }
        at = end
        // Leaving the loop stops the first worker's job mid-file.
        if (joined) break
      }
      if (joined) for await (const chunks of tail!.chunksFrom(fh, has)) yield { chunks, half: 2 }
    } finally {
      tail?.stop()
    }
  } finally {
    busy = false
  }
}

/** The previous version's first boundary at or past the middle of a file of `size` bytes, and inside it. */
function splitAt(previous: PreviousChunks, size: number): { position: number; next: number } | undefined {
  let position = 0
  for (let j = 0; j < previous.lengths.length; j++) {
    if (position >= size / 2) return j === 0 || position >= size ? undefined : { position, next: j }
    position += previous.lengths[j]!
  }
  return undefined
}

/** One batch as the worker sends it. */
interface WorkerBatch {
  readonly bytes?: Uint8Array
  readonly lengths: number[]
  readonly digests?: Uint8Array
  readonly hashed?: Uint8Array
  /** Sent without bytes: the bytes of the chunks that were not taken from the previous version. */
  readonly cutBytes?: number
}

type WorkerMessage = { readonly id: number } & (WorkerBatch | { done: true } | { error: { code?: string; message: string } })

/**
 * The first `count` chunks of a batch that starts at byte `at` of the file.
 * A batch sent without bytes has every chunk's digest: those the store
 * lacks are read again from `fh`.
 */
async function chunksOf(batch: WorkerBatch, at: number, fh: FileHandle, has: (cids: readonly CID[]) => Promise<boolean[]>, count = batch.lengths.length): Promise<FileChunk[]> {
  const lengths = batch.lengths.slice(0, count)
  if (batch.bytes === undefined) return readMissing(lengths.map((_, i) => digestAt(batch, i)!), lengths, at, fh, has)
  let off = 0
  return lengths.map((n, i) => {
    const bytes = batch.bytes!.subarray(off, off + n)
    off += n
    return { cid: digestAt(batch, i) ?? cidOf(RAW, bytes), size: n, bytes }
  })
}

/** Chunks known by CID and length, from byte `at` on: with bytes, read from `fh` and checked, where the store lacks them. */
async function readMissing(cids: readonly CID[], lengths: readonly number[], at: number, fh: FileHandle, has: (cids: readonly CID[]) => Promise<boolean[]>): Promise<FileChunk[]> {
  const present = await has(cids)
  const out: FileChunk[] = []
  for (let k = 0; k < cids.length; k++) {
    const size = lengths[k]!
    out.push({ cid: cids[k]!, size, bytes: present[k] ? undefined : await readChecked(fh, at, size, cids[k]!) })
    at += size
  }
  return out
}

function digestAt(batch: WorkerBatch, i: number): CID | undefined {
  return batch.hashed?.[i] === 1 ? cidFromDigest(RAW, batch.digests!.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES)) : undefined
}

let jobs = 0

/** Runs `job` on worker `w`; yields its batches, acknowledging each as it is taken. */
async function* jobBatches(w: Worker, job: Omit<ChunkJob, 'id'>): AsyncGenerator<WorkerBatch> {
  const id = ++jobs
  const inbox: WorkerMessage[] = []
  let wake: (() => void) | undefined
  const onMessage = (m: WorkerMessage): void => {
    if (m.id !== id) return
    inbox.push(m)
    wake?.()
  }
  // A crashed or exited worker answers nothing more: report it and never reuse it.
  let dead = false
  const onError = (err: Error): void => {
    dead = true
    onMessage({ id, error: { message: err.message } })
  }
  const onExit = (): void => onError(new Error('the chunk worker stopped'))
  w.on('message', onMessage)
  w.on('error', onError)
  w.on('exit', onExit)
  let finished = false
  try {
    w.postMessage({ ...job, id })
    for (;;) {
      if (inbox.length === 0) await new Promise<void>((resolve) => { wake = resolve })
      wake = undefined
      const m = inbox.shift()!
      if ('done' in m) {
        finished = true
        return
      }
      if ('error' in m) {
        finished = true
        throw Object.assign(new Error(m.error.message), { code: m.error.code })
      }
      w.postMessage('ack')
      yield m
    }
  } finally {
    w.off('message', onMessage)
    w.off('error', onError)
    w.off('exit', onExit)
    if (dead) {
      if (first === w) first = undefined
      if (second === w) second = undefined
      void w.terminate()
    } else if (!finished) {
      // Left mid-file, the worker would keep sending this file's chunks:
      // it stops at its next step, and stays for the next file. What it
      // sent meanwhile carries this job's id, which no one listens for.
      w.postMessage({ stop: id })
    }
  }
}

/**
 * Bytes of the second half looked at before deciding whether it is worth
 * it: when most of them had to be cut, the file is mostly new, and every
 * chunk of the half would be read and hashed again here. The first worker
 * then cuts the whole file, as it would alone.
 */
const DECIDE_BYTES = 8 * 1024 * 1024

/**
 * The second half, hashed by the second worker as soon as it starts, its
 * lengths and digests collected here (a few dozen bytes a chunk) whatever
 * the first half is doing.
 */
class SecondHalf {
  private seen = 0
  private cut = 0
  private decided = false
  private abandoned = false
  /** The batches collected, each taken (and dropped) once the first half has joined. */
  private readonly got: Array<WorkerBatch | undefined> = []
  /** Where the next chunk starts: batch `got[batch]`, its chunk `chunk`, at byte `at`. */
  private readonly cursor: { batch: number; chunk: number; at: number }
  private done = false
  private failure: unknown
  private wake: (() => void) | undefined
  private readonly worker: Worker
  private readonly batches: AsyncGenerator<WorkerBatch>

  constructor(abs: string, previous: PreviousChunks, from: { position: number; next: number }) {
    this.cursor = { batch: 0, chunk: 0, at: from.position }
    this.worker = second ??= newWorker()
    this.batches = jobBatches(this.worker, { path: abs, previous, from, digestsOnly: true })
    void this.collect()
  }

  private async collect(): Promise<void> {
    try {
      for await (const batch of this.batches) {
        this.got.push(batch)
        if (!this.decided) {
          const bytes = batch.lengths.reduce((sum, n) => sum + n, 0)
          this.seen += bytes
          this.cut += batch.cutBytes ?? bytes
          this.decided = this.seen >= DECIDE_BYTES
          this.abandoned = this.decided && this.cut * 2 > this.seen
        }
        this.wake?.()
        // Leaving the loop stops the worker.
        if (this.abandoned) break
      }
    } catch (err) {
      this.failure = err
    }
    this.done = true
    this.decided = true
    this.wake?.()
  }

  private async more(): Promise<void> {
    await new Promise<void>((resolve) => { this.wake = resolve })
    this.wake = undefined
  }

  /**
   * Whether a chunk of this half starts at `offset` (or the half ends
   * there); waits until it is known, and never once the half is abandoned.
   * Asked with offsets that only grow, so it walks the chunks once.
   */
  async startsAt(offset: number): Promise<boolean> {
    while (!this.decided) await this.more()
    // Without this half the first worker cuts the rest of the file itself.
    if (this.abandoned || this.failure !== undefined) return false
    const c = this.cursor
    while (c.at < offset) {
      const batch = this.got[c.batch]
      if (batch === undefined) {
        if (this.done) break
        await this.more()
      } else if (c.chunk === batch.lengths.length) {
        c.batch++
        c.chunk = 0
      } else {
        c.at += batch.lengths[c.chunk++]!
      }
    }
    return c.at === offset
  }

  /**
   * This half's chunks from where startsAt last said one starts, to the
   * end: those the store lacks are read from `fh` and checked against
   * their digests, a batch at a time.
   */
  async *chunksFrom(fh: FileHandle, has: (cids: readonly CID[]) => Promise<boolean[]>): AsyncGenerator<FileChunk[]> {
    let { batch: b, chunk: first, at } = this.cursor
    for (;; b++, first = 0) {
      while (!this.done && b >= this.got.length) await this.more()
      const batch = this.got[b]
      if (batch === undefined) break
      this.got[b] = undefined
      const lengths = batch.lengths.slice(first)
      if (lengths.length === 0) continue
      yield await readMissing(lengths.map((_, i) => digestAt(batch, first + i)!), lengths, at, fh, has)
      for (const n of lengths) at += n
    }
    if (this.failure !== undefined) throw this.failure
  }

  /**
   * Stops the worker at once if it is still at this half, and lets no
   * other file have it: a generator's return() would wait for its next
   * message, while the worker went on with this file.
   */
  stop(): void {
    if (this.done) return
    if (second === this.worker) second = undefined
    void this.worker.terminate()
  }
}

async function readChecked(fh: FileHandle, at: number, size: number, cid: CID): Promise<Uint8Array> {
  const bytes = await readRange(fh, at, new Uint8Array(size))
  if (bytes === undefined || !verifyBytes(cid, bytes)) throw new ChangedWhileRead()
  return bytes
}
