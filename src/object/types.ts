/**
 * The shapes of LEFT's objects, as values. docs/object-format.md gives their
 * byte-level encoding; codec.ts converts between the two.
 */
import type { CID } from 'multiformats/cid'

/** What a directory entry names. */
export type EntryKind = 'file' | 'dir' | 'link'

/** One named child of a directory. */
export interface DirEntry {
  /** One safe path segment (see name.ts). */
  readonly name: string
  readonly kind: EntryKind
  /** file: raw chunk or file node; dir: directory node; link: raw target bytes. */
  readonly cid: CID
  /** file: content bytes; link: target bytes; dir: 0. */
  readonly size: number
  /** file: modification time in whole milliseconds since the epoch; others: 0. */
  readonly mtime: number
  /** file: the owner-exec bit; others: false. */
  readonly exec: boolean
}

/**
 * A directory of at most FLAT_DIR_MAX entries, or one bucket of a sharded
 * directory: entries sorted by the UTF-8 bytes of their names, no duplicates.
 */
export interface DirNode {
  readonly type: 'dir'
  readonly entries: readonly DirEntry[]
}

/** One non-empty bucket of a shard: the entries whose name hash has nibble `index` at the shard's depth. */
export interface ShardBucket {
  /** 0 to 15. */
  readonly index: number
  /** How many entries the bucket holds, all the way down. */
  readonly count: number
  /** A DirNode when count <= FLAT_DIR_MAX, otherwise a DirShard one level deeper. */
  readonly cid: CID
}

/**
 * A directory of more than FLAT_DIR_MAX entries, or a bucket of one: its
 * entries split into up to 16 buckets by one nibble of each name's sha2-256
 * (see dir-layout.ts), so a one-file change rewrites O(log n) small nodes.
 */
export interface DirShard {
  readonly type: 'shard'
  /** Which nibble of the name hash picks the bucket: 0 is the high nibble of the first byte. */
  readonly depth: number
  /** Non-empty buckets by increasing index. */
  readonly buckets: readonly ShardBucket[]
}

/** A pointer from a file node to a chunk (height 0) or a lower file node. */
export interface FileLink {
  readonly cid: CID
  /** Content bytes under this link. */
  readonly size: number
}

/** One node of a file's chunk tree. */
export interface FileNode {
  readonly type: 'file'
  /** 0 when links are raw chunks; otherwise links are file nodes of height - 1. */
  readonly height: number
  /** Sum of the link sizes. */
  readonly size: number
  readonly links: readonly FileLink[]
}

/** A snapshot of the share folder with its history. */
export interface Commit {
  readonly type: 'commit'
  /** The root directory node. */
  readonly tree: CID
  /** Zero (first commit), one, or two (merge) parents, sorted by CID bytes. */
  readonly parents: readonly CID[]
  /** 1 for a first commit, else 1 + the largest generation among the parents. */
  readonly generation: number
  /** The peer id that made the commit. */
  readonly author: string
  /** Milliseconds since the epoch. */
  readonly time: number
  readonly message: string
}

/** Any dag-cbor object LEFT stores. */
export type Node = DirNode | DirShard | FileNode | Commit
