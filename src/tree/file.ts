/**
 * Reading a file back out of its chunk tree, in order, one chunk at a time,
 * so a 1 GiB file never sits in memory.
 */
import type { CID } from 'multiformats/cid'
import { RAW } from '../object/index.js'
import { type ObjectSource, loadFileNode, mustGet } from './source.js'

/** Chunks read at once: overlaps store lookups while staying a few MiB at most. */
const READ_AHEAD = 16

/** Yields the content of the file rooted at `cid`, chunk by chunk. */
export async function* fileChunks(src: ObjectSource, cid: CID): AsyncGenerator<Uint8Array> {
  if (cid.code === RAW) {
    yield await mustGet(src, cid)
    return
  }
  const node = await loadFileNode(src, cid)
  if (node.height > 0) {
    for (const link of node.links) yield* fileChunks(src, link.cid)
    return
  }
  for (let i = 0; i < node.links.length; i += READ_AHEAD) {
    const group = node.links.slice(i, i + READ_AHEAD)
    yield* await Promise.all(group.map((link) => mustGet(src, link.cid)))
  }
}
