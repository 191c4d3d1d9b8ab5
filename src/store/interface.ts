/**
 * The store contract: what every part of LEFT may ask of the object store,
 * whatever holds the bytes. `Store` (store.ts) is the one implementation; it
 * runs on LevelDB for real folders and on memory-level in unit tests, and
 * one conformance suite (test/store/conformance.ts) holds both to this
 * contract.
 */
import type { CID } from 'multiformats/cid'
import type { Block } from '../object/index.js'

/** What the stat cache remembers about one file, to skip re-reading it. */
export interface StatEntry {
  readonly size: number
  readonly mtimeMs: number
  readonly ctimeMs: number
  readonly ino: number
  /** Root CID of the file content, as a string. */
  readonly cid: string
}

/**
 * What the stat cache remembers about one directory: the node its content
 * made when it was last laid out, so an unchanged directory is not encoded
 * and hashed again. It holds only while none of the directory's own file
 * entries changes: the store drops it with any write to them (see
 * `StoreWrite.stat`). Subdirectories are checked by their CIDs, so a change
 * deeper down makes it stale without touching it. Written only for a node
 * made of the folder's content alone (no symlinks, nothing kept from HEAD),
 * and only after the node is stored.
 */
export interface DirStat {
  /** Root CID of the directory node, as a string. */
  readonly cid: string
  /**
   * When the scan that made it started (ms since the epoch). A file whose
   * ctime is later changed after it, whoever wrote its stat entry.
   */
  readonly at: number
  /** How many files the node lists. */
  readonly files: number
  /** Root CIDs of the subdirectories it lists, by name, as strings. */
  readonly dirs: Readonly<Record<string, string>>
}

/**
 * One directory's part of the stat cache, read without loading the rest: so
 * a walk of a million files holds the entries of one directory at a time.
 */
export interface StatDir {
  /** The entries of the directory's own files, by name. */
  readonly files: Map<string, StatEntry>
  /** Names of subdirectories that have entries somewhere below them. */
  readonly dirs: Set<string>
  /** The directory's own entry, if it has one. */
  readonly self?: DirStat
}

/**
 * One change to the store. Its index part (objects, commit index, refs,
 * stat cache, staging) lands in one atomic batch, all or nothing. Chunk
 * data goes first, to its own database: a crash between the two leaves
 * only data nothing points at, which gc sweeps.
 */
export interface StoreWrite {
  /** Objects to store. Their links must already be stored or be in this write. */
  readonly blocks?: readonly Block[]
  /** CIDs among `blocks` (or already stored) that are commits, for the index. */
  readonly commits?: readonly CID[]
  /** Refs to set, or to delete when null. */
  readonly refs?: Readonly<Record<string, CID | null>>
  /**
   * Stat cache entries to set, or to delete when null. Each also drops the
   * DirStat of the file's directory, unless `dirStat` sets that one anew.
   */
  readonly stat?: ReadonlyMap<string, StatEntry | null>
  /** Directory stat entries to set, or to delete when null, by directory ('' for the top). */
  readonly dirStat?: ReadonlyMap<string, DirStat | null>
  /**
   * Directories whose stat cache entries, at any depth and their own
   * DirStat included, are forgotten; their parents' DirStats go too. Not
   * part of the atomic batch (they go just before it): forgetting cache
   * entries is always safe, it only costs a re-read.
   */
  readonly statUnder?: readonly string[]
  /** Staged nodes to delete (they were promoted into `blocks`). */
  readonly unstage?: readonly CID[]
  /** Commits to record as thin (see ObjectStore): forgotten by policy. */
  readonly thin?: readonly CID[]
  /**
   * Commits among `blocks` to record as thin unless they were stored before
   * this write: a history fetch marks what it brought, never a commit that
   * another fetch completed meanwhile, or that is HEAD.
   */
  readonly thinIfNew?: readonly CID[]
  /** Commits whose content is here again, no longer thin (HEAD moved there, or a fetch brought it). */
  readonly unthin?: readonly CID[]
  /** The object format everything stored is in from now on (`left migrate`'s last write). */
  readonly format?: number
}

/**
 * A content-addressed object store with refs and two caches.
 *
 * Invariant, kept by every writer: a structure node (commit, directory,
 * file node) is listed only when every structure node it links to is
 * listed too, and a listed chunk's bytes are stored. So `has(node)` means
 * "its whole history and tree are here", after a kill -9 at any instant
 * and, for refs, after a power cut.
 *
 * Content (the raw chunks and symlink targets below a tree) is another
 * matter. The content below HEAD and below every commit that is not *thin*
 * is here. A thin commit is one fetched as history only (a sync brings
 * every commit and tree, but content only for the head it materializes) or
 * forgotten by `left forget`; the store records which commits are thin, and
 * their content may be absent. So may the content below nodes no commit
 * reaches yet (an interrupted fetch). fsck calls a chunk missing only when
 * HEAD or a commit that is not thin reaches it.
 */
export interface ObjectStore {
  /** True when the object is stored: for a node, with every structure node below it (see the invariant). */
  has(cid: CID): Promise<boolean>
  /** `has` for many CIDs at once, in order. */
  hasMany(cids: readonly CID[]): Promise<boolean[]>
  /**
   * The object's bytes, or undefined when it is not listed. A listed object
   * whose bytes are lost also reads as undefined (then `has` is still true:
   * fsck calls it corrupt); a damaged table may throw.
   */
  get(cid: CID): Promise<Uint8Array | undefined>
  /** `get` for many CIDs at once, in order: two round trips to LevelDB, not two per object. */
  getMany(cids: readonly CID[]): Promise<Array<Uint8Array | undefined>>
  /** Applies one write; see StoreWrite for what is atomic. */
  write(w: StoreWrite): Promise<void>
  /** Stores blocks whose links are all stored already. */
  putBlocks(blocks: readonly Block[]): Promise<void>
  /** The CID a ref points at, or undefined. */
  getRef(name: string): Promise<CID | undefined>
  /** All refs whose names start with `prefix`, in name order. */
  listRefs(prefix?: string): Promise<Array<[string, CID]>>
  /** Indexed commit CID strings that start with `prefix`, at most `limit` (default 2), in order. */
  findCommits(prefix: string, limit?: number): Promise<string[]>
  /**
   * The whole stat cache: file entries by path, directory entries by
   * `StatDir` key (the directory's path and a slash; '' for the top). A
   * damaged entry is left out: it only costs a re-read.
   */
  loadStatCache(): Promise<Map<string, StatEntry | DirStat>>
  /** The stat cache entry of one file (share-relative path), or undefined (none, or damaged). */
  statEntry(path: string): Promise<StatEntry | undefined>
  /** The stat cache of one directory (share-relative, '' for the top), as `loadStatCache` would give it. */
  statDir(dir: string): Promise<StatDir>
  /** Keeps a fetched structure node until its children arrive (see sync/fetch.ts). */
  stage(block: Block): Promise<void>
  /** A staged node's bytes, or undefined. */
  getStaged(cid: CID): Promise<Uint8Array | undefined>
  /** The commits recorded as thin (see the invariant). */
  thinCommits(): Promise<Set<string>>
  /** Every listed object CID (for gc and fsck). */
  objectCids(): AsyncIterable<CID>
  /**
   * Unlists objects and drops their commit index rows and chunk bytes, then
   * sweeps chunk bytes that no object points at (a crash between a write's
   * two halves, or two fetches storing the same chunk at once). For gc only:
   * the caller keeps the invariant by deleting whole unreachable sets.
   */
  deleteObjects(cids: readonly CID[]): Promise<void>
  /** Drops every staged node. */
  clearStaging(): Promise<void>
  /** Releases the store; it is unusable afterwards. */
  close(): Promise<void>
}
