/**
 * Reading a file back out of its chunk tree, in order, one chunk at a time,
 * so a 1 GiB file never sits in memory. Every node is checked against what
 * its parent declared (height one less, size as linked), so a damaged or
 * crafted tree is refused instead of written out: its depth stays bounded
 * by MAX_FILE_HEIGHT, and the bytes yielded add up to the size asked for.
 * Every chunk is hashed against its CID before it is yielded, so a store
 * damaged on disk cannot put wrong bytes into the share folder.
 */
import type { CID } from 'multiformats/cid'
import { HashMismatchError, InvalidObjectError } from '../errors.js'
import { RAW, verifyBytes } from '../object/index.js'
import { type ObjectSource, loadFileNode, mustGet } from './source.js'

/** Chunks read at once: overlaps store lookups while staying a few MiB at most. */
const READ_AHEAD = 16

/**
 * Yields the content of the file rooted at `cid`, chunk by chunk. With
 * `size` (a directory entry's), the file must be exactly that long. Throws
 * InvalidObjectError when the tree does not hold together.
 */
export async function* fileChunks(src: ObjectSource, cid: CID, size?: number): AsyncGenerator<Uint8Array> {
  yield* walk(src, cid, size, undefined)
}

async function* walk(src: ObjectSource, cid: CID, size: number | undefined, height: number | undefined): AsyncGenerator<Uint8Array> {
  if (cid.code === RAW) {
    const bytes = await verified(src, cid)
    if (size !== undefined && bytes.length !== size) throw mismatch(cid, `is ${bytes.length} bytes, not ${size}`)
    yield bytes
    return
  }
  const node = await loadFileNode(src, cid)
  if (size !== undefined && node.size !== size) throw mismatch(cid, `declares ${node.size} bytes, not ${size}`)
  if (height !== undefined && node.height !== height) throw mismatch(cid, `has height ${node.height}, not ${height}`)
  if (node.height > 0) {
    for (const link of node.links) yield* walk(src, link.cid, link.size, node.height - 1)
    return
  }
  for (let i = 0; i < node.links.length; i += READ_AHEAD) {
    const group = node.links.slice(i, i + READ_AHEAD)
    const chunks = await Promise.all(group.map((link) => verified(src, link.cid)))
    chunks.forEach((chunk, j) => {
      if (chunk.length !== group[j]!.size) throw mismatch(group[j]!.cid, `is ${chunk.length} bytes, not ${group[j]!.size}`)
    })
    yield* chunks
  }
}

async function verified(src: ObjectSource, cid: CID): Promise<Uint8Array> {
  const bytes = await mustGet(src, cid)
  if (!verifyBytes(cid, bytes)) throw new HashMismatchError(cid.toString())
  return bytes
}

function mismatch(cid: CID, what: string): InvalidObjectError {
  return new InvalidObjectError(`file tree does not hold together: ${cid} ${what}`)
}
