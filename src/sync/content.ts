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
import { type Block, type DirEntry, verifyBytes } from '../object/index.js'
import type { ObjectStore } from '../store/index.js'
import { type Leaf, fileLeaves } from '../tree/file.js'

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
export interface ContentOptions {
  /** Where to ask for what is missing; without one, missing content is a ContentAbsentError. */
  readonly source?: BlockSource | undefined
  /** Called after every object stored. */
  readonly onProgress?: (progress: FetchProgress) => void
  /** Called with the CIDs of each batch of objects once it is written. */
  readonly onStored?: (cids: readonly CID[]) => void
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
 * Makes sure the content of every file and symlink among `wanted` (their
 * `after` entries) is in the store, fetching what is missing from
 * `options.source`. Resolves with the totals. Rejects with
 * ContentAbsentError naming the first path whose content nobody had, with
 * ProtocolError or HashMismatchError when the peer sends a wrong object
 * (which is then not stored), or with the source's error.
 */
export async function fetchContent(wanted: Iterable<Wanted> | AsyncIterable<Wanted>, store: ContentStore, options: ContentOptions = {}): Promise<FetchProgress> {
  const totals = { objects: 0, bytes: 0, files: 0, expectedBytes: 0, ...options.start }
  const leaves = new LeafBatcher(store, options.onStored)
  const limit = Math.max(1, options.concurrency ?? 256)
  const running = new Set<Promise<void>>()
  let failure: { error: unknown } | undefined
  /** Leaves waiting for one store lookup, each with the entry it belongs to. */
  let pending: Array<{ leaf: Leaf; owner: Owner }> = []
  const listed = new Set<string>()

  const receive = async (leaf: Leaf, owner: Owner): Promise<void> => {
    let bytes: Uint8Array
    try {
      bytes = await options.source!.request(leaf.cid)
    } catch (err) {
      if (err instanceof MissingObjectError) throw new ContentAbsentError(owner.path, options.absentWhy ?? 'and the peer does not have it either')
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
  }

  const lookup = async (): Promise<void> => {
    const batch = pending
    pending = []
    const have = await store.hasMany(batch.map((p) => p.leaf.cid))
    for (let i = 0; i < batch.length; i++) {
      if (have[i]) continue
      const { leaf, owner } = batch[i]!
      if (options.source === undefined) throw new ContentAbsentError(owner.path, 'and no peer is at hand to fetch it from: run this while `left watch` is connected to a peer, or add --from HOST[:PORT]')
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

  try {
    for await (const w of wanted) {
      const e = w.after
      if (e === undefined || e.kind === 'dir') continue
      const owner: Owner = { path: w.path, size: e.size, file: e.kind === 'file', counted: false }
      // A symlink's target is one raw object, which fileLeaves yields as is.
      for await (const leaf of fileLeaves(store, e.cid, e.size, listed)) {
        pending.push({ leaf, owner })
        if (pending.length >= LOOKUP_BATCH) await lookup()
        if (failure !== undefined) throw failure.error
      }
    }
    if (pending.length > 0) await lookup()
  } finally {
    // Nothing may still be writing when this settles: the caller may close the store.
    await Promise.allSettled(running)
  }
  if (failure !== undefined) throw failure.error
  return totals
}

interface Owner {
  readonly path: string
  readonly size: number
  /** Progress counts files; a symlink's target is fetched but not counted. */
  readonly file: boolean
  counted: boolean
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
