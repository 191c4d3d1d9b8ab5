/**
 * Turns one file on disk into chunks, file nodes and a root CID. Small files
 * are read whole; large ones stream through the chunker so memory stays
 * bounded. A file that changes while it is read is read again, and after a
 * few tries reported, never recorded torn.
 */
import { open, stat } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { chunkLengths, chunkStream } from '../chunk/fastcdc.js'
import { FileAccessError, FileChangedError } from '../errors.js'
import { FileLayout, RAW, cidOf, type FileRoot } from '../object/index.js'
import type { BlockWriter } from './block-writer.js'

/** Files up to this size are read in one call; larger ones are streamed. */
const WHOLE_READ_LIMIT = 4 * 1024 * 1024
/** Read size for streamed files. */
const STREAM_READ = 1024 * 1024
const TRIES = 3

/** The stat fields that show a file changed. */
export function sameStat(a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino
}

/** Hashes (and, through `writer`, stores) one file; returns its root and the stat it matches. */
export async function hashFile(abs: string, rel: string, writer: BlockWriter): Promise<{ root: FileRoot; stat: Stats }> {
  for (let attempt = 0; attempt < TRIES; attempt++) {
    let before: Stats
    let root: FileRoot
    try {
      const fh = await open(abs, 'r')
      try {
        before = await fh.stat()
        root = before.size <= WHOLE_READ_LIMIT
          ? await layoutWhole(await fh.readFile(), writer)
          : await layoutStream(fh.createReadStream({ highWaterMark: STREAM_READ, autoClose: false }), writer)
      } finally {
        await fh.close()
      }
    } catch (err) {
      throw new FileAccessError(rel, err)
    }
    let after: Stats
    try {
      after = await stat(abs)
    } catch (err) {
      throw new FileAccessError(rel, err)
    }
    if (sameStat(before, after) && root.size === after.size) return { root, stat: after }
  }
  throw new FileChangedError(rel)
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

async function layoutStream(stream: AsyncIterable<Uint8Array>, writer: BlockWriter): Promise<FileRoot> {
  const layout = new FileLayout()
  for await (const chunk of chunkStream(stream)) await addChunk(chunk, layout, writer)
  return finish(layout, writer)
}

async function addChunk(bytes: Uint8Array, layout: FileLayout, writer: BlockWriter): Promise<void> {
  const cid = cidOf(RAW, bytes)
  await writer.add({ cid, bytes })
  for (const node of layout.add({ cid, size: bytes.length })) await writer.add(node)
}

async function finish(layout: FileLayout, writer: BlockWriter): Promise<FileRoot> {
  const { blocks, root } = layout.finish()
  for (const node of blocks) await writer.add(node)
  return root
}
