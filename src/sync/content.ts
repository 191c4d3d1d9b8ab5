/**
 * The content fetch: bring the chunks (and symlink targets) of some
 * directory entries into the store, asking a peer only for those missing.
 * A store holds every commit and tree but content only where it is needed
 * (store/interface.ts), so whatever writes files into the share folder
 * first makes sure their content is here: a sync for the head it is about
 * to apply, checkout and restore for an old version. Transport-independent:
 * the peer is a BlockSource, or none, and then absent content is an error.
 *
 * Raw objects link nowhere, so each is verified and stored as it arrives:
 * an interrupted fetch keeps what landed, and the next one asks for the rest.
 */
import type { CID } from 'multiformats/cid'
import { ContentAbsentError, HashMismatchError, MissingObjectError, ProtocolError } from '../errors.js'
import { type Block, type DirEntry, cidKey, verifyBytes } from '../object/index.js'
import type { ObjectStore } from '../store/index.js'
import { type Leaf, type SeenObjects, fileLeaves } from '../tree/file.js'

/** Where fetched objects come from: one request per CID. */
export interface BlockSource {
  /**
   * Resolves with the bytes the peer sent for `cid` (inflated, and not yet
   * verified unless `verified` says so). Rejects with MissingObjectError when the peer lacks it, or with
   * the error that ended the connection.
   */
  request(cid: CID): Promise<Uint8Array>
  /** True when `request` resolves only with bytes it has checked against their CID, so they need no second hash. */
  readonly verified?: boolean
}

/** Running totals reported while a fetch proceeds. */
export interface FetchProgress {
  /** Objects written into the object space so far. */
  readonly objects: number
  /** Object bytes received from the peer so far (after inflation). */
  readonly bytes: number
  /** Files found missing so far: the fetch discovers its work as it walks down. */
  readonly files: number
  /** Sum of the sizes of those files: an estimate of the bytes still to come plus those received. */
  readonly expectedBytes: number
}

/** The part of the store a content fetch needs. */
export type ContentStore = Pick<ObjectStore, 'get' | 'hasMany' | 'write'>

/** A directory entry to be written out, at its share-relative path (a tree Change or an apply's PathChange). */
export interface Wanted {
  readonly path: string
  readonly after?: DirEntry | undefined
}

/** Options of a content fetch. */
export interface ContentOptions<W extends Wanted = Wanted> {
  /** Where to ask for what is missing; without one, missing content is a ContentAbsentError. */
  readonly source?: BlockSource | undefined
  /** Called after every object stored. */
  readonly onProgress?: (progress: FetchProgress) => void
  /** Called with the CIDs of each batch of objects once it is written. */
  readonly onStored?: (cids: readonly CID[]) => void
  /**
   * Called with each wanted file once all its content is stored, while the
   * rest is still coming: the node writes it out ahead of the head
   * (repo/write-ahead.ts). An object is listed under the first file that
   * links it, and not again while the fetch remembers it (RECENT_KEYS), so
   * a file that links an object listed before (a chunk it shares with
   * another file, or repeats within itself) is not reported; integrate
   * writes it. The very same file at another path is reported with the
   * first, while the fetch remembers it.
   */
  readonly onReady?: (wanted: W) => void
  /** Totals to count on from (a history fetch that ran first). */
  readonly start?: FetchProgress
  /** Requests in flight at once (default 256: enough to keep the window full while batches are written). */
  readonly concurrency?: number
  /** Why the source could not help, ending the error's message (default: "and the peer does not have it either"). */
  readonly absentWhy?: string
}

/** Leaves looked up in the store at once. */
const LOOKUP_BATCH = 1024

/**
 * Files of at least this size are asked for after all smaller ones: a
 * folder of small files added beside a big one arrives while the big one
 * still moves.
 */
export const LATER_BYTES = 4 * 1024 * 1024

/**
 * Makes sure the content of every file and symlink among `wanted` (their
 * `after` entries) is in the store, fetching what is missing from
 * `options.source`; files of LATER_BYTES or more are asked for after the
 * rest. Resolves with the totals. Rejects with
 * ContentAbsentError naming the first path whose content nobody had, with
 * ProtocolError or HashMismatchError when the peer sends a wrong object
 * (which is then not stored), or with the source's error.
 */
export async function fetchContent<W extends Wanted>(wanted: Iterable<W> | AsyncIterable<W>, store: ContentStore, options: ContentOptions<W> = {}): Promise<FetchProgress> {
  const totals = { objects: 0, bytes: 0, files: 0, expectedBytes: 0, ...options.start }
  const leaves = new LeafBatcher(store, options.onStored)
  const limit = Math.max(1, options.concurrency ?? 256)
  const running = new Set<Promise<void>>()
  let failure: { error: unknown } | undefined
  /** Leaves waiting for one store lookup, each with the entry it belongs to. */
  let pending: Array<{ leaf: Leaf; owner: Owner<W> }> = []
  /**
   * File nodes walked, every one: a file tree can link one node many times,
   * and many files one subtree, which must then be walked once. Honest
   * folders have few (one per file of more than one chunk, and the inner
   * nodes of big ones); a peer pays for each it sends.
   */
  const walked = new Set<string>()
  /** Chunks listed lately, under some file: listed again, one would be looked up and asked for again. */
  const listed = new RecentMap<string, true>(RECENT_KEYS)
  const seen: SeenObjects = {
    has: (key) => walked.has(key) || listed.has(key),
    add: (key, leaf) => {
      if (leaf) listed.set(key, true)
      else walked.add(key)
    }
  }
  /** Files listed lately by root, when ready is wanted: a copy of one is ready with it. Settled ones keep only their outcome. */
  const byRoot = new RecentMap<string, Owner<W> | 'reported' | 'never'>(RECENT_KEYS)

  /** Reports `owner` (and its copies) ready once it is listed whole and all of it has landed. */
  const readyCheck = (owner: Owner<W>): void => {
    if (options.onReady === undefined || !owner.file || !owner.listed || owner.waiting > 0 || owner.ready !== 'open') return
    owner.ready = owner.whole ? 'reported' : 'never'
    if (owner.key !== undefined) byRoot.set(owner.key, owner.ready)
    if (owner.ready === 'never') return
    options.onReady(owner.wanted)
    for (const w of owner.copies) options.onReady(w)
    owner.copies = []
  }

  const landed = (owner: Owner<W>): void => {
    owner.waiting--
    readyCheck(owner)
  }

  const receive = async (leaf: Leaf, owner: Owner<W>): Promise<void> => {
    let bytes: Uint8Array
    try {
      bytes = await options.source!.request(leaf.cid)
    } catch (err) {
      if (err instanceof MissingObjectError) throw new ContentAbsentError(owner.wanted.path, options.absentWhy ?? 'and the peer does not have it either')
      throw err
    }
    if (!(options.source!.verified ?? false) && !verifyBytes(leaf.cid, bytes)) throw new HashMismatchError(leaf.cid.toString())
    if (leaf.size !== undefined && bytes.length !== leaf.size) {
      throw new ProtocolError(`peer sent a chunk ${leaf.cid} of ${bytes.length} bytes where its file says ${leaf.size}`)
    }
    totals.bytes += bytes.length
    await leaves.add({ cid: leaf.cid, bytes })
    totals.objects++
    options.onProgress?.({ ...totals })
    landed(owner)
  }

  const lookup = async (): Promise<void> => {
    const batch = pending
    pending = []
    const have = await store.hasMany(batch.map((p) => p.leaf.cid))
    for (let i = 0; i < batch.length; i++) {
      const { leaf, owner } = batch[i]!
      if (have[i]) {
        landed(owner)
        continue
      }
      if (options.source === undefined) throw new ContentAbsentError(owner.wanted.path, 'and no peer is at hand to fetch it from: run this while `left watch` is connected to a peer, or add --from HOST[:PORT]')
      if (!owner.counted && owner.file) {
        owner.counted = true
        totals.files++
        totals.expectedBytes += owner.size
      }
      while (running.size >= limit) await Promise.race(running)
      if (failure !== undefined) throw failure.error
      const p: Promise<void> = receive(leaf, owner)
        .catch((error: unknown) => { failure ??= { error } })
        .finally(() => running.delete(p))
      running.add(p)
    }
  }

  const list = async (w: W, e: DirEntry): Promise<void> => {
    const owner: Owner<W> = { wanted: w, size: e.size, file: e.kind === 'file', counted: false, waiting: 0, whole: false, listed: false, ready: 'open', copies: [] }
    if (options.onReady !== undefined && owner.file) {
      // A root links its size: the same CID declaring another is checked apart.
      const key = `${cidKey(e.cid)} ${e.size}`
      const first = byRoot.get(key)
      // The very same file again: every object of it is listed under the first.
      if (first !== undefined) {
        if (first === 'reported') options.onReady(w)
        else if (first !== 'never') first.copies.push(w)
        return
      }
      byRoot.set(key, owner)
      owner.key = key
    }
    let sizes = 0
    // A symlink's target is one raw object, which fileLeaves yields as is.
    for await (const leaf of fileLeaves(store, e.cid, e.size, seen)) {
      owner.waiting++
      sizes += leaf.size ?? 0
      pending.push({ leaf, owner })
      if (pending.length >= LOOKUP_BATCH) await lookup()
      if (failure !== undefined) throw failure.error
    }
    // Leaves skipped as listed under another file leave the sum short.
    owner.whole = sizes === e.size
    owner.listed = true
    readyCheck(owner)
  }

  try {
    const later: W[] = []
    for await (const w of wanted) {
      const e = w.after
      if (e === undefined || e.kind === 'dir') continue
      if (e.kind === 'file' && e.size >= LATER_BYTES) later.push(w)
      else await list(w, e)
    }
    for (const w of later) await list(w, w.after!)
    if (pending.length > 0) await lookup()
  } finally {
    // Nothing may still be writing when this settles: the caller may close the store.
    await Promise.allSettled(running)
  }
  if (failure !== undefined) throw failure.error
  return totals
}

/**
 * Chunks and file roots a fetch remembers, at least this many of the
 * latest: remembering every one took hundreds of MB for a million files.
 * One forgotten costs a store lookup, or a file written by integrate
 * instead of ahead of it; a chunk has no links, so nothing more.
 */
const RECENT_KEYS = 65_536

/** A map that keeps at least the last `max` keys set, and at most twice as many: when the newer half fills, the older is dropped. */
class RecentMap<K, V> {
  private newer = new Map<K, V>()
  private older = new Map<K, V>()

  constructor(private readonly max: number) {}

  get(key: K): V | undefined {
    return this.newer.get(key) ?? this.older.get(key)
  }

  has(key: K): boolean {
    return this.newer.has(key) || this.older.has(key)
  }

  set(key: K, value: V): void {
    if (!this.newer.has(key) && this.newer.size >= this.max) {
      this.older = this.newer
      this.newer = new Map()
    }
    this.newer.set(key, value)
  }
}

interface Owner<W extends Wanted> {
  readonly wanted: W
  readonly size: number
  /** Progress counts files; a symlink's target is fetched but not counted. */
  readonly file: boolean
  counted: boolean
  /** Its leaves listed and not yet found or stored. */
  waiting: number
  /** All its leaves were listed under it: none was listed under another file first. */
  whole: boolean
  /** All its leaves have been listed. */
  listed: boolean
  /** Whether it has been reported ready, or never will be (it is not whole). Copies listed later follow it. */
  ready: 'open' | 'reported' | 'never'
  /** The same file at other paths, listed while it was open: reported ready with it. */
  copies: W[]
  /** Its key in `byRoot`, where the first of its copies is. */
  key?: string
}

/** Most bytes of raw objects held for one batch before it is written. */
const LEAF_BATCH_BYTES = 4 * 1024 * 1024

/**
 * Groups verified raw objects into one store write per turn of the event
 * loop (or per LEAF_BATCH_BYTES): one LevelDB write per 64 KiB chunk would
 * cost more than receiving it. `add` resolves once the object is stored.
 */
class LeafBatcher {
  private open: { blocks: Block[]; bytes: number; seal: () => void; written: Promise<void> } | undefined

  constructor(private readonly store: Pick<ObjectStore, 'write'>, private readonly onStored?: (cids: readonly CID[]) => void) {}

  add(block: Block): Promise<void> {
    let batch = this.open
    if (batch === undefined) {
      let seal!: () => void
      const sealed = new Promise<void>((resolve) => { seal = resolve })
      const blocks: Block[] = []
      batch = { blocks, bytes: 0, seal, written: sealed.then(() => this.store.write({ blocks })).then(() => this.onStored?.(blocks.map((b) => b.cid))) }
      this.open = batch
      const mine = batch
      setImmediate(() => this.seal(mine))
    }
    batch.blocks.push(block)
    batch.bytes += block.bytes.length
    if (batch.bytes >= LEAF_BATCH_BYTES) this.seal(batch)
    return batch.written
  }

  private seal(batch: NonNullable<LeafBatcher['open']>): void {
    if (this.open === batch) this.open = undefined
    batch.seal()
  }
}
