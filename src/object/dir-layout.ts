/**
 * Lays a directory's entries out as objects. Up to FLAT_DIR_MAX entries make
 * one directory node, as they always have. A bigger directory is a shard:
 * its entries go to 16 buckets by one nibble of the sha2-256 of their name,
 * and each bucket is laid out the same way one nibble deeper. The layout
 * depends only on the set of entries, never on the order of edits, so two
 * peers holding the same directory hold the same CID; and a one-file change
 * in a directory of n entries rewrites one small node per level, O(log n).
 */
import { createHash } from 'node:crypto'
import { InvalidObjectError } from '../errors.js'
import { type Block, FLAT_DIR_MAX, MAX_SHARD_DEPTH, SHARD_WIDTH, encodeNode } from './codec.js'
import type { DirEntry, ShardBucket } from './types.js'

/** The sha2-256 of a name's UTF-8 bytes: where the name lives in a shard. */
export function nameHash(name: string): Uint8Array {
  return createHash('sha256').update(name, 'utf8').digest()
}

/** The bucket of a name hash at `depth`: nibble `depth`, high nibble of each byte first. */
export function bucketAt(hash: Uint8Array, depth: number): number {
  const byte = hash[depth >> 1]!
  return depth % 2 === 0 ? byte >> 4 : byte & 0x0f
}

/** A laid-out directory: every block to store, children before parents, and the root's CID. */
export interface DirLayout {
  readonly root: Block
  readonly blocks: readonly Block[]
}

/**
 * Lays out `entries`, sorted by name and distinct, as the directory (or, at
 * `depth` > 0, the shard bucket) that holds exactly them.
 */
export function layoutDir(entries: readonly DirEntry[], depth = 0): DirLayout {
  const blocks: Block[] = []
  const hashes = entries.length > FLAT_DIR_MAX ? entries.map((e) => nameHash(e.name)) : []
  const root = layout(entries, hashes, depth, blocks)
  return { root, blocks }
}

function layout(entries: readonly DirEntry[], hashes: readonly Uint8Array[], depth: number, out: Block[]): Block {
  if (entries.length <= FLAT_DIR_MAX) return emit({ type: 'dir', entries }, out)
  // More than FLAT_DIR_MAX names sharing all 64 nibbles would take a sha2-256 collision.
  if (depth > MAX_SHARD_DEPTH) throw new InvalidObjectError('directory names collide in sha2-256')
  const groups = Array.from({ length: SHARD_WIDTH }, () => ({ entries: [] as DirEntry[], hashes: [] as Uint8Array[] }))
  entries.forEach((e, i) => {
    const g = groups[bucketAt(hashes[i]!, depth)]!
    g.entries.push(e)
    g.hashes.push(hashes[i]!)
  })
  const buckets: ShardBucket[] = []
  groups.forEach((g, index) => {
    if (g.entries.length > 0) buckets.push({ index, count: g.entries.length, cid: layout(g.entries, g.hashes, depth + 1, out).cid })
  })
  return emit({ type: 'shard', depth, buckets }, out)
}

function emit(node: Parameters<typeof encodeNode>[0], out: Block[]): Block {
  const block = encodeNode(node)
  out.push(block)
  return block
}
