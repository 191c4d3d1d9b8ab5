/**
 * Turns one file on disk into chunks, file nodes and a root CID. Small files
 * are read whole; large ones stream through the chunker so memory stays
 * bounded, guided by the file's previous version when there is one, so that
 * what an edit left alone is hashed but not cut again. A file that changes
 * while it is read is read again, and after a few tries reported, never
 * recorded torn.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { Worker } from 'node:worker_threads'
import type { Stats } from 'node:fs'
import type { CID } from 'multiformats/cid'
import { DEFAULT_PARAMS, DIGEST_BYTES, type PreviousChunks, chunkLengths, chunkStream, chunkStreamAlong } from '../chunk/fastcdc.js'
import { FileAccessError, FileChangedError } from '../errors.js'
import { FileLayout, RAW, SHA2_256, cidFromDigest, cidOf, type FileRoot } from '../object/index.js'
import { fileLeaves } from '../tree/file.js'
import type { ObjectSource } from '../tree/source.js'
import type { BlockWriter } from './block-writer.js'

/**
 * Open flags for reading a file to hash: never through a symlink. The scan
 * saw a regular file; if a link took its place since, opening fails (ELOOP)
 * instead of committing whatever the link points at.
 */
export const READ_NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW

/** Files up to this size are read in one call; larger ones are streamed. */
const WHOLE_READ_LIMIT = 4 * 1024 * 1024
/** Read size for streamed files. */
const STREAM_READ = 1024 * 1024
const TRIES = 3

/** The stat fields that show a file changed (a stat cache entry has them too). */
export type StatKey = Pick<Stats, 'size' | 'mtimeMs' | 'ctimeMs' | 'ino'>

/** True when two stats agree on every field that shows a change. */
export function sameStat(a: StatKey, b: StatKey): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino
}

/** The version of a file that its last commit or checkout saw: its content root, and where its file nodes are. */
export interface PreviousVersion {
  readonly src: ObjectSource
  readonly cid: CID
  readonly size: number
}

/**
 * Hashes (and, through `writer`, stores) one file; returns its root and the
 * stat it matches. `previous` only saves work: the root is the same without it.
 */
export async function hashFile(abs: string, rel: string, writer: BlockWriter, previous?: PreviousVersion): Promise<{ root: FileRoot; stat: Stats }> {
  for (let attempt = 0; attempt < TRIES; attempt++) {
    let before: Stats
    let root: FileRoot
    try {
      const small = readSmall(abs)
      if (small !== undefined) {
        before = small.stat
        root = await layoutWhole(small.bytes, writer)
      } else {
        const fh = await open(abs, READ_NOFOLLOW)
        try {
          before = await fh.stat()
          // The worker starts (about 0.1 s) while the previous version's nodes are read.
          if (!workerBusy) chunkWorker()
          root = await layoutBig(abs, fh, writer, previous === undefined ? undefined : await previousChunks(previous, before.size))
        } finally {
          await fh.close()
        }
      }
    } catch (err) {
      throw new FileAccessError(rel, err)
    }
    let after: Stats
    try {
      after = lstatSync(abs)
    } catch (err) {
      throw new FileAccessError(rel, err)
    }
    if (sameStat(before, after) && root.size === after.size) return { root, stat: after }
  }
  throw new FileChangedError(rel)
}

/**
 * Reads a file of at most WHOLE_READ_LIMIT bytes whole, with synchronous
 * calls: for small files the promise round trips through the thread pool
 * (open, fstat, read, close, stat) cost more than the reading itself, about
 * a second for 10,000 files. Undefined when the file is bigger.
 */
function readSmall(abs: string): { bytes: Buffer; stat: Stats } | undefined {
  const fd = openSync(abs, READ_NOFOLLOW)
  try {
    const stat = fstatSync(fd)
    if (stat.size > WHOLE_READ_LIMIT) return undefined
    return { bytes: readFileSync(fd), stat }
  } finally {
    closeSync(fd)
  }
}

async function layoutWhole(buf: Uint8Array, writer: BlockWriter): Promise<FileRoot> {
  const layout = new FileLayout()
  let pos = 0
  for (const n of chunkLengths(buf)) {
    await addChunk(buf.subarray(pos, pos + n), layout, writer)
    pos += n
  }
  return finish(layout, writer)
}

/**
 * Big files go to the chunk worker when it is free, so cutting runs on the
 * second core while this thread hashes, builds nodes and writes the store;
 * when it is busy with another file, this thread does it all.
 */
async function layoutBig(abs: string, fh: import('node:fs/promises').FileHandle, writer: BlockWriter, previous: PreviousChunks | undefined): Promise<FileRoot> {
  if (workerBusy) return layoutStream(fh.createReadStream({ highWaterMark: STREAM_READ, autoClose: false }), writer, previous)
  workerBusy = true
  try {
    const layout = new FileLayout()
    for await (const batch of chunkInWorker(abs, previous)) {
      for (const { cid, bytes } of batch) await addChunk(bytes, layout, writer, cid)
    }
    return await finish(layout, writer)
  } finally {
    workerBusy = false
  }
}

let worker: Worker | undefined
let workerBusy = false

interface WorkerBatch { bytes: Uint8Array; lengths: number[]; digests?: Uint8Array; hashed?: Uint8Array }
type WorkerMessage = WorkerBatch | { done: true } | { error: { code?: string; message: string } }

/** The chunk worker, started if it is not running. */
function chunkWorker(): Worker {
  if (worker === undefined) {
    worker = new Worker(new URL('./chunk-worker.js', import.meta.url))
    // Never keeps the process alive on its own.
    worker.unref()
  }
  return worker
}

/** Streams one file's chunks, with their CIDs, from the worker thread. */
async function* chunkInWorker(abs: string, previous: PreviousChunks | undefined): AsyncGenerator<Array<{ cid: import('multiformats/cid').CID; bytes: Uint8Array }>> {
  const w = chunkWorker()
  const inbox: WorkerMessage[] = []
  let wake: (() => void) | undefined
  const onMessage = (m: WorkerMessage): void => {
    inbox.push(m)
    wake?.()
  }
  // A crashed or exited worker answers nothing more: report it and never reuse it.
  let dead = false
  const onError = (err: Error): void => {
    dead = true
    onMessage({ error: { message: err.message } })
  }
  const onExit = (): void => onError(new Error('the chunk worker stopped'))
  w.on('message', onMessage)
  w.on('error', onError)
  w.on('exit', onExit)
  let finished = false
  try {
    w.postMessage({ path: abs, previous })
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
      let off = 0
      const { digests, hashed } = m
      yield m.lengths.map((n, i) => {
        const bytes = m.bytes.subarray(off, off + n)
        off += n
        return { cid: hashed?.[i] === 1 ? cidFromDigest(RAW, digests!.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES)) : cidOf(RAW, bytes), bytes }
      })
    }
  } finally {
    w.off('message', onMessage)
    w.off('error', onError)
    w.off('exit', onExit)
    // Abandoned mid-file, the worker would keep sending this file's chunks.
    if (!finished || dead) {
      if (worker === w) worker = undefined
      void w.terminate()
    }
  }
}

async function layoutStream(stream: AsyncIterable<Uint8Array>, writer: BlockWriter, previous: PreviousChunks | undefined): Promise<FileRoot> {
  const layout = new FileLayout()
  if (previous === undefined) for await (const chunk of chunkStream(stream)) await addChunk(chunk, layout, writer)
  else for await (const { bytes, digest } of chunkStreamAlong(stream, previous)) await addChunk(bytes, layout, writer, digest === undefined ? undefined : cidFromDigest(RAW, digest))
  return finish(layout, writer)
}

/**
 * The chunks of a file's previous version, read from its file nodes, for a
 * new version of `size` bytes. Undefined, and so no guide, when they cannot
 * be read, or when they are more than a version that size could use: five
 * nodes can declare a petabyte.
 */
async function previousChunks(previous: PreviousVersion, size: number): Promise<PreviousChunks | undefined> {
  const most = 2 * Math.ceil(size / DEFAULT_PARAMS.min) + 2
  const lengths: number[] = []
  const digests: Uint8Array[] = []
  try {
    for await (const leaf of fileLeaves(previous.src, previous.cid, previous.size)) {
      if (lengths.length === most) return undefined
      const sha = leaf.cid.code === RAW && leaf.cid.multihash.code === SHA2_256 && leaf.cid.multihash.digest.length === DIGEST_BYTES
      // A chunk named otherwise is never followed: a zero length never ends at a cut.
      lengths.push(sha ? leaf.size ?? 0 : 0)
      digests.push(sha ? leaf.cid.multihash.digest : new Uint8Array(DIGEST_BYTES))
    }
  } catch {
    // Only a guide: the file is cut from scratch, and a damaged store is fsck's to report.
    return undefined
  }
  const packed = new Uint8Array(digests.length * DIGEST_BYTES)
  digests.forEach((d, i) => packed.set(d, i * DIGEST_BYTES))
  return { lengths, digests: packed }
}

/** Stores one chunk and the file nodes it closes; `cid` when already hashed (by the worker). */
async function addChunk(bytes: Uint8Array, layout: FileLayout, writer: BlockWriter, cid = cidOf(RAW, bytes)): Promise<void> {
  await writer.add({ cid, bytes })
  for (const node of layout.add({ cid, size: bytes.length })) await writer.add(node)
}

async function finish(layout: FileLayout, writer: BlockWriter): Promise<FileRoot> {
  const { blocks, root } = layout.finish()
  for (const node of blocks) await writer.add(node)
  return root
}
