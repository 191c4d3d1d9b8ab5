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

/**
 * The bucket of a name hash at `depth`: nibble `depth`, high nibble of each
 * byte first. The hash starts at `offset` of `hash`.
 */
export function bucketAt(hash: Uint8Array, depth: number, offset = 0): number {
  const byte = hash[offset + (depth >> 1)]!
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
  const blocks = [...layoutItems(entries, (e) => e, depth)]
  return { root: blocks[blocks.length - 1]!, blocks }
}

/**
 * Lays out `items`, sorted by name and distinct, as layoutDir lays out
 * their entries, one block at a time, children before parents and the root
 * last. Each item is made into its entry with `entryOf` only while the node
 * that holds it is encoded, so a directory of 200,000 files never holds
 * 200,000 CIDs (some 800 bytes each) at once, nor all its nodes: a caller
 * that knows a file by its stat entry's text keeps that until its node is
 * made, and stores each block as it comes.
 */
export function * layoutItems<T extends { readonly name: string }>(items: readonly T[], entryOf: (item: T) => DirEntry, depth = 0): Generator<Block, void> {
  // Each name's hash, 32 bytes apiece in one buffer: a Buffer each was
  // another 200,000 objects at the moment a wide directory peaks.
  let hashes = new Uint8Array(0)
  if (items.length > FLAT_DIR_MAX) {
    hashes = new Uint8Array(items.length * HASH_BYTES)
    items.forEach((item, i) => hashes.set(nameHash(item.name), i * HASH_BYTES))
  }
  yield * layout({ items, entryOf, hashes }, Uint32Array.from(items.keys()), depth)
}

const HASH_BYTES = 32

interface Layout<T> {
  readonly items: readonly T[]
  readonly entryOf: (item: T) => DirEntry
  readonly hashes: Uint8Array
}

/** Lays out the items at positions `at` (ascending, so still sorted by name); returns the top block, yielded last. */
function * layout<T>(l: Layout<T>, at: Uint32Array, depth: number): Generator<Block, Block> {
  if (at.length <= FLAT_DIR_MAX) return yield * emit({ type: 'dir', entries: Array.from(at, (i) => l.entryOf(l.items[i]!)) })
  // More than FLAT_DIR_MAX names sharing all 64 nibbles would take a sha2-256 collision.
  if (depth > MAX_SHARD_DEPTH) throw new InvalidObjectError('directory names collide in sha2-256')
  const bucketOf = (i: number): number => bucketAt(l.hashes, depth, i * HASH_BYTES)
  const counts = new Uint32Array(SHARD_WIDTH)
  for (const i of at) counts[bucketOf(i)]!++
  const groups = Array.from(counts, (n) => ({ at: new Uint32Array(n), filled: 0 }))
  for (const i of at) {
    const g = groups[bucketOf(i)]!
    g.at[g.filled++] = i
  }
  const buckets: ShardBucket[] = []
  for (const [index, g] of groups.entries()) {
    if (g.at.length > 0) buckets.push({ index, count: g.at.length, cid: (yield * layout(l, g.at, depth + 1)).cid })
  }
  return yield * emit({ type: 'shard', depth, buckets })
}

function * emit(node: Parameters<typeof encodeNode>[0]): Generator<Block, Block> {
  const block = encodeNode(node)
  yield block
  return block
}
