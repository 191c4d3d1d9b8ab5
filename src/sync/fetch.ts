/**
 * The closure fetch: bring a commit and everything below it (tree, dirs, file
 * nodes, chunks, parent commits) into the store, asking the peer only for
 * what is missing, while keeping the store's closure invariant at every
 * instant. Transport-independent: it sees the peer only as a BlockSource.
 *
 * The rule that makes it both safe and resumable:
 *  - a raw object has no links, so it is verified and stored at once;
 *  - a structure node is verified, decoded (which validates names and shape)
 *    and kept in staging until all its children are stored; then it moves to
 *    the object space in one atomic write that also removes it from staging.
 * A kill -9 at any point leaves complete objects in `o` and half-done nodes
 * in staging, so the next fetch re-asks only for what never arrived.
 */
import type { CID } from 'multiformats/cid'
import { HashMismatchError, InvalidObjectError, ProtocolError } from '../errors.js'
import { forEachLimit } from '../limit.js'
import { RAW, cidKey, verifyBytes } from '../object/cid.js'
import { decodeNode } from '../object/codec.js'
import type { Block } from '../object/codec.js'
import type { Node } from '../object/types.js'
import type { ObjectStore } from '../store/index.js'

/** Where fetched objects come from: one request per CID. */
export interface BlockSource {
  /**
   * Resolves with the bytes the peer sent for `cid` (inflated but not yet
   * verified). Rejects with MissingObjectError when the peer lacks it, or with
   * the error that ended the connection.
   */
  request(cid: CID): Promise<Uint8Array>
}

/** The part of the store a fetch needs. */
export type FetchStore = Pick<ObjectStore, 'has' | 'hasMany' | 'write' | 'stage' | 'getStaged'>

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

/** What a finished fetch did. */
export interface FetchResult extends FetchProgress {
  /** Structure nodes found in staging (left by an interrupted fetch) and not asked for again. */
  readonly resumed: number
}

/** Options for a fetch. */
export interface FetchOptions {
  /** Called after every object stored. */
  readonly onProgress?: (progress: FetchProgress) => void
  /** Structure children of one node processed at once (default 8). */
  readonly nodeConcurrency?: number
  /** What the root must be: heads are commits, so a head that is not is refused on arrival. Default: anything. */
  readonly root?: 'commit' | 'dir'
  /** Raw children of one node requested at once (default 256: enough to keep the window full while batches are written). */
  readonly leafConcurrency?: number
}

/**
 * What a link must point at, checked on freshly fetched objects. File
 * content carries the size its parent declared, and below a file's root the
 * height: a file node of height h links nodes of height h - 1 (or, at 0, raw
 * chunks), each exactly as big as its link says. Without these checks a few
 * small objects could declare a file of any size, or a chain of nodes of any
 * depth.
 */
type Expect =
  | { readonly type: 'commit' | 'dir' | 'any' }
  | { readonly type: 'file'; readonly size: number; readonly height?: number }

/** Two links with the same CID and equal keys expect the same thing. */
function expectKey(cid: CID, e: Expect): string {
  return e.type === 'file' ? `${cidKey(cid)} file ${e.size} ${e.height ?? ''}` : `${cidKey(cid)} ${e.type}`
}

/**
 * Fetches the closure of `root` from `source` into `store`. Resolves when
 * `root` is in the object space (immediately if it already was). Rejects with
 * HashMismatchError or ProtocolError when the peer sends a wrong or invalid
 * object (which is then not stored), or with the source's error.
 */
export async function fetchClosure(root: CID, store: FetchStore, source: BlockSource, options: FetchOptions = {}): Promise<FetchResult> {
  const run = new ClosureFetch(store, source, options)
  if (!(await store.has(root))) await run.ensure(root, { type: options.root ?? 'any' })
  return { objects: run.objects, bytes: run.bytes, files: run.files, expectedBytes: run.expectedBytes, resumed: run.resumed }
}

class ClosureFetch {
  objects = 0
  bytes = 0
  files = 0
  expectedBytes = 0
  resumed = 0
  /** One load per CID (and expectation) at a time: shared chunks and subtrees are fetched once. */
  private readonly inflight = new Map<string, Promise<void>>()
  private failure: { error: unknown } | undefined

  /** Raw objects have no links, so they can land in batches, whatever order they arrive in. */
  private readonly leaves: LeafBatcher

  constructor(private readonly store: FetchStore, private readonly source: BlockSource, private readonly options: FetchOptions) {
    this.leaves = new LeafBatcher(store)
  }

  /** Loads `cid`, known not to be stored yet, and everything below it. */
  ensure(cid: CID, expect: Expect): Promise<void> {
    // Keyed by what is expected too, so a second link that expects something
    // else of the same object checks it for itself.
    const key = expectKey(cid, expect)
    let p = this.inflight.get(key)
    if (p === undefined) {
      p = this.load(cid, expect).catch((error: unknown) => {
        // Stop starting new requests everywhere; in-flight ones finish and
        // their verified objects still land, which helps the next attempt.
        this.failure ??= { error }
        throw error
      }).finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    return p
  }

  private async load(cid: CID, expect: Expect): Promise<void> {
    if (this.failure !== undefined) throw this.failure.error
    if (cid.code === RAW) {
      const bytes = await this.receive(cid)
      if (expect.type === 'file' && bytes.length !== expect.size) {
        throw new ProtocolError(`peer sent a chunk ${cid} of ${bytes.length} bytes where its file says ${expect.size}`)
      }
      await this.leaves.add({ cid, bytes })
      this.stored()
      return
    }
    let bytes = await this.store.getStaged(cid)
    // Staged bytes were verified when they arrived; checking again costs
    // little for a node and guards against a damaged staging entry.
    const staged = bytes !== undefined && verifyBytes(cid, bytes)
    if (staged) this.resumed++
    else bytes = await this.receive(cid)
    const node = decode(cid, bytes!, expect)
    if (!staged) await this.store.stage({ cid, bytes: bytes! })
    await this.children(node)
    await this.store.write({ blocks: [{ cid, bytes: bytes! }], commits: node.type === 'commit' ? [cid] : [], unstage: [cid] })
    this.stored()
  }

  /** Ensures every child of `node` is stored, skipping those that already are. */
  private async children(node: Node): Promise<void> {
    const links = childLinks(node)
    const have = await this.store.hasMany(links.map((l) => l.cid))
    const leaves: Link[] = []
    const nodes: Link[] = []
    // A node may link one object many times (a file of identical chunks):
    // once its first load has finished it leaves `inflight`, so a later
    // duplicate in the list would ask the peer for it again.
    const listed = new Set<string>()
    links.forEach((l, i) => {
      if (have[i]) return
      if (node.type === 'dir' && node.entries[i]!.kind === 'file') {
        this.files++
        this.expectedBytes += node.entries[i]!.size
      }
      const key = expectKey(l.cid, l.expect)
      if (listed.has(key)) return
      listed.add(key)
      ;(l.cid.code === RAW ? leaves : nodes).push(l)
    })
    const go = (l: Link): Promise<void> => this.ensure(l.cid, l.expect)
    // allSettled, not all: when one list fails, the other's loads still run
    // and write; the fetch must not settle (and let the caller close the
    // store or start again) until they have stopped.
    const results = await Promise.allSettled([
      forEachLimit(leaves, this.options.leafConcurrency ?? 256, go),
      forEachLimit(nodes, this.options.nodeConcurrency ?? 8, go)
    ])
    for (const r of results) if (r.status === 'rejected') throw r.reason
  }

  private async receive(cid: CID): Promise<Uint8Array> {
    const bytes = await this.source.request(cid)
    if (!verifyBytes(cid, bytes)) throw new HashMismatchError(cid.toString())
    this.bytes += bytes.length
    return bytes
  }

  private stored(): void {
    this.objects++
    this.options.onProgress?.({ objects: this.objects, bytes: this.bytes, files: this.files, expectedBytes: this.expectedBytes })
  }
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

  constructor(private readonly store: FetchStore) {}

  add(block: Block): Promise<void> {
    let batch = this.open
    if (batch === undefined) {
      let seal!: () => void
      const sealed = new Promise<void>((resolve) => { seal = resolve })
      const blocks: Block[] = []
      batch = { blocks, bytes: 0, seal, written: sealed.then(() => this.store.write({ blocks })) }
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

interface Link {
  readonly cid: CID
  readonly expect: Expect
}

/** A node's links with what each must be; decodeNode has already checked their codecs. */
function childLinks(node: Node): Link[] {
  switch (node.type) {
    case 'commit':
      return [{ cid: node.tree, expect: { type: 'dir' } }, ...node.parents.map((cid): Link => ({ cid, expect: { type: 'commit' } }))]
    case 'dir':
      return node.entries.map((e): Link => ({
        cid: e.cid,
        expect: e.kind === 'dir' ? { type: 'dir' } : e.kind === 'file' ? { type: 'file', size: e.size } : { type: 'any' }
      }))
    case 'file':
      return node.links.map((l): Link => ({ cid: l.cid, expect: { type: 'file', size: l.size, ...(node.height > 0 ? { height: node.height - 1 } : {}) } }))
  }
}

/** Decodes a verified node; anything invalid or of the wrong type is the peer's protocol error. */
function decode(cid: CID, bytes: Uint8Array, expect: Expect): Node {
  let node: Node
  try {
    node = decodeNode(bytes)
  } catch (err) {
    const why = err instanceof InvalidObjectError ? err.message : 'undecodable'
    throw new ProtocolError(`peer sent an invalid object ${cid}: ${why}`, err)
  }
  if (expect.type !== 'any' && node.type !== expect.type) throw new ProtocolError(`peer sent a ${node.type} for ${cid} where a ${expect.type} belongs`)
  if (node.type === 'file' && expect.type === 'file') {
    if (node.size !== expect.size) throw new ProtocolError(`peer sent a file node ${cid} of ${node.size} bytes where its parent says ${expect.size}`)
    if (expect.height !== undefined && node.height !== expect.height) {
      throw new ProtocolError(`peer sent a file node ${cid} of height ${node.height} where its parent needs ${expect.height}`)
    }
  }
  return node
}
