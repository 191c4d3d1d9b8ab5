/**
 * Turns one file on disk into chunks, file nodes and a root CID. Small files
 * are read whole; large ones stream through the chunker so memory stays
 * bounded, guided by the file's previous version when there is one, so that
 * what an edit left alone is hashed but not cut again. A file that changes
 * while it is read is read again, and after a few tries reported, never
 * recorded torn.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import type { CID } from 'multiformats/cid'
import { DEFAULT_PARAMS, DIGEST_BYTES, type PreviousChunks, chunkLengths, chunkStream, chunkStreamAlong } from '../chunk/fastcdc.js'
import { FileAccessError, FileChangedError } from '../errors.js'
import { FileLayout, RAW, SHA2_256, cidFromDigest, cidOf, type FileRoot } from '../object/index.js'
import { fileLeaves } from '../tree/file.js'
import type { ObjectSource } from '../tree/source.js'
import type { BlockWriter } from './block-writer.js'
import { ChangedWhileRead, type FileChunk, chunksInWorkers, startWorkers, workersFree } from './chunk-threads.js'

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

/** The exec bit a file entry records: the owner's. */
export function isExec(st: { readonly mode: number }): boolean {
  return (st.mode & 0o100) !== 0
}

/** The version of a file that its last commit or checkout saw: its content root, and where its file nodes are. */
export interface PreviousVersion {
  readonly src: ObjectSource
  readonly cid: CID
  readonly size: number
}

/**
 * Hashes (and, through `writer`, stores) one file; returns its root and the
 * stat it matches. `previous` only saves work: the root is the same without
 * it, for a previous version that LEFT cut (see GuidedCutter).
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
          // The workers start while the previous version's nodes are read.
          if (workersFree()) startWorkers(before.size, previous !== undefined)
          root = await layoutBig(abs, fh, before.size, writer, previous === undefined ? undefined : await previousChunks(previous, before.size))
        } finally {
          await fh.close()
        }
      }
    } catch (err) {
      if (err instanceof ChangedWhileRead) continue
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
    const bytes = buf.subarray(pos, pos + n)
    await addChunk({ cid: cidOf(RAW, bytes), size: n, bytes }, layout, writer)
    pos += n
  }
  return finish(layout, writer)
}

/**
 * Big files go to the chunk workers when they are free, so cutting runs on
 * the second core while this thread hashes, builds nodes and writes the
 * store (chunk-threads.ts); when they are busy with another file, this
 * thread does it all.
 */
async function layoutBig(abs: string, fh: FileHandle, size: number, writer: BlockWriter, previous: PreviousChunks | undefined): Promise<FileRoot> {
  if (!workersFree()) return layoutStream(fh.createReadStream({ highWaterMark: STREAM_READ, autoClose: false }), writer, previous)
  const layout = new FileLayout()
  for await (const { chunks } of chunksInWorkers(abs, fh, size, previous, (cids) => writer.has(cids))) {
    for (const chunk of chunks) await addChunk(chunk, layout, writer)
  }
  return finish(layout, writer)
}

async function layoutStream(stream: AsyncIterable<Uint8Array>, writer: BlockWriter, previous: PreviousChunks | undefined): Promise<FileRoot> {
  const layout = new FileLayout()
  if (previous === undefined) for await (const bytes of chunkStream(stream)) await addChunk({ cid: cidOf(RAW, bytes), size: bytes.length, bytes }, layout, writer)
  else for await (const { bytes, digest } of chunkStreamAlong(stream, previous)) await addChunk({ cid: digest === undefined ? cidOf(RAW, bytes) : cidFromDigest(RAW, digest), size: bytes.length, bytes }, layout, writer)
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

/** Stores one chunk (unless the store has it) and the file nodes it closes. */
async function addChunk(chunk: FileChunk, layout: FileLayout, writer: BlockWriter): Promise<void> {
  if (chunk.bytes !== undefined) await writer.add({ cid: chunk.cid, bytes: chunk.bytes })
  for (const node of layout.add({ cid: chunk.cid, size: chunk.size })) await writer.add(node)
}

async function finish(layout: FileLayout, writer: BlockWriter): Promise<FileRoot> {
  const { blocks, root } = layout.finish()
  for (const node of blocks) await writer.add(node)
  return root
}
