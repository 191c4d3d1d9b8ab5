/**
 * The history fetch: bring a commit and every structure node below it (its
 * tree, directories, file nodes, and parent commits with theirs) into the
 * store, asking the peer only for what is missing, while keeping the store's
 * closure invariant at every instant. Content (chunks) is not part of it:
 * `fetchClosure` then fetches content for the head alone (content.ts), so a
 * new peer gets every version's metadata but only the files it writes out.
 * Transport-independent: it sees the peer only as a BlockSource.
 *
 * The rule that makes it both safe and resumable:
 *  - a structure node is verified, decoded (which validates names and shape)
 *    and kept in staging until all its children are stored; then it moves to
 *    the object space in one atomic write that also removes it from staging.
 * Every commit stored this way is recorded thin in the same write (its
 * content need not be here), until its content is fetched too.
 * A kill -9 at any point leaves complete objects in `o` and half-done nodes
 * in staging, so the next fetch re-asks only for what never arrived.
 */
import type { CID } from 'multiformats/cid'
import { HashMismatchError, InvalidObjectError, ProtocolError } from '../errors.js'
import { forEachLimit } from '../limit.js'
import { RAW, cidKey, verifyBytes } from '../object/cid.js'
import { decodeNode } from '../object/codec.js'
import type { Commit, Node } from '../object/types.js'
import type { ObjectStore } from '../store/index.js'
import { type Change, diffTrees } from '../tree/diff.js'
import { type DirRegion, TOP_REGION, bucketRegion, checkDirNode } from '../tree/directory.js'
import { loadCommit, mustGet } from '../tree/source.js'
import { generationAfter } from '../history/ancestry.js'
import { type BlockSource, type FetchProgress, fetchContent } from './content.js'

export type { BlockSource, FetchProgress } from './content.js'

/** The part of the store a fetch needs. */
export type FetchStore = Pick<ObjectStore, 'get' | 'has' | 'hasMany' | 'write' | 'stage' | 'getStaged'>

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
  /** Content requests in flight at once (default 256). */
  readonly leafConcurrency?: number
  /**
   * A tree whose content is all here (HEAD's): only the content of what
   * differs from it is fetched. Default: none, so all of the root's content.
   */
  readonly base?: CID | undefined
  /**
   * Where the content comes from (default: the same source as the
   * history): the node passes a swarm of the peers that have the head or
   * are fetching it (node/network.ts `headContent`).
   */
  readonly contentSource?: BlockSource
  /** Called with the CIDs of each batch of content written (see ContentOptions). */
  readonly onStored?: (cids: readonly CID[]) => void
  /** Called with each changed file once all its content is stored (see ContentOptions). */
  readonly onReady?: (change: Change) => void
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
  | { readonly type: 'commit' | 'any' }
  /** A directory's top node, or a bucket of a shard (tree/directory.ts checks it fits there). */
  | { readonly type: 'dir'; readonly region: DirRegion }
  | { readonly type: 'file'; readonly size: number; readonly height?: number }

/** Two links with the same CID and equal keys expect the same thing. */
function expectKey(cid: CID, e: Expect): string {
  switch (e.type) {
    case 'file': return `${cidKey(cid)} file ${e.size} ${e.height ?? ''}`
    case 'dir': return `${cidKey(cid)} dir ${e.region.path.join('.')} ${e.region.count ?? ''}`
    default: return `${cidKey(cid)} ${e.type}`
  }
}

const DIR: Expect = { type: 'dir', region: TOP_REGION }

/**
 * Fetches `root` for use: its history (fetchHistory), then the content of
 * its tree, or of what that tree changes against `options.base`. A commit
 * root whose content is then here stops being thin. Resolves when all of it
 * is stored. Rejects with HashMismatchError or ProtocolError when the peer
 * sends a wrong or invalid object (which is then not stored), with
 * ContentAbsentError when it lacks content, or with the source's error.
 */
export async function fetchClosure(root: CID, store: FetchStore, source: BlockSource, options: FetchOptions = {}): Promise<FetchResult> {
  const history = await fetchHistory(root, store, source, options)
  const node = decodeNode(await mustGet(store, root))
  const tree = node.type === 'commit' ? node.tree : node.type === 'dir' || node.type === 'shard' ? root : undefined
  if (tree === undefined) return history
  // A bucket of a huge directory at a time: the order files come in is not shown.
  const content = await fetchContent(diffTrees(store, options.base, tree, '', true), store, {
    source: options.contentSource ?? source, start: history,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.onStored ? { onStored: options.onStored } : {}),
    ...(options.onReady ? { onReady: options.onReady } : {}),
    ...(options.leafConcurrency !== undefined ? { concurrency: options.leafConcurrency } : {})
  })
  if (node.type === 'commit') await store.write({ unthin: [root] })
  return { ...content, resumed: history.resumed }
}

/**
 * Fetches the history of `root`, a structure node (heads are commits), from
 * `source` into `store`: every structure node it reaches that is not
 * stored, and no content. Resolves when `root` is in the object space
 * (immediately if it already was); every commit it stored is thin.
 */
export async function fetchHistory(root: CID, store: FetchStore, source: BlockSource, options: FetchOptions = {}): Promise<FetchResult> {
  const run = new HistoryFetch(store, source, options)
  if (!(await store.has(root))) await run.ensure(root, options.root === 'dir' ? DIR : { type: options.root ?? 'any' })
  return { objects: run.objects, bytes: run.bytes, files: 0, expectedBytes: 0, resumed: run.resumed }
}

class HistoryFetch {
  objects = 0
  bytes = 0
  resumed = 0
  /** One load per CID (and expectation) at a time: shared subtrees are fetched once. */
  private readonly inflight = new Map<string, Promise<void>>()
  private failure: { error: unknown } | undefined
  /** Generations of the commits this fetch has checked, by cidKey. */
  private readonly generations = new Map<string, number>()

  constructor(private readonly store: FetchStore, private readonly source: BlockSource, private readonly options: FetchOptions) {}

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
    let bytes = await this.store.getStaged(cid)
    // Staged bytes were verified when they arrived; checking again costs
    // little for a node and guards against a damaged staging entry.
    const staged = bytes !== undefined && verifyBytes(cid, bytes)
    if (staged) this.resumed++
    else bytes = await this.receive(cid)
    const node = decode(cid, bytes!, expect)
    if (!staged) await this.store.stage({ cid, bytes: bytes! })
    await this.children(node, expect)
    if (node.type === 'commit') {
      await this.checkGeneration(cid, node)
      this.generations.set(cidKey(cid), node.generation)
    }
    const commits = node.type === 'commit' ? [cid] : []
    await this.store.write({ blocks: [{ cid, bytes: bytes! }], commits, thinIfNew: commits, unstage: [cid] })
    this.stored()
  }

  /** Ensures every structure child of `node` is stored, skipping those that already are. */
  private async children(node: Node, expect: Expect): Promise<void> {
    // Content is fetched apart, and only where it is needed (content.ts).
    const links = childLinks(node, expect).filter((l) => l.cid.code !== RAW)
    const have = await this.store.hasMany(links.map((l) => l.cid))
    const nodes: Link[] = []
    // A node may link one object many times (a file of identical chunks):
    // once its first load has finished it leaves `inflight`, so a later
    // duplicate in the list would ask the peer for it again.
    const listed = new Set<string>()
    links.forEach((l, i) => {
      if (have[i]) return
      const key = expectKey(l.cid, l.expect)
      if (listed.has(key)) return
      listed.add(key)
      nodes.push(l)
    })
    await forEachLimit(nodes, this.options.nodeConcurrency ?? 8, (l) => this.ensure(l.cid, l.expect))
  }

  /** A commit's generation must follow from its parents, now stored: the ancestry walks rely on it. */
  private async checkGeneration(cid: CID, commit: Commit): Promise<void> {
    // Parents this fetch brought were decoded a moment ago; only those stored before are read.
    const parents = await Promise.all(commit.parents.map(async (p) => ({ generation: this.generations.get(cidKey(p)) ?? (await loadCommit(this.store, p)).generation })))
    const want = generationAfter(parents)
    if (commit.generation !== want) throw new ProtocolError(`peer sent commit ${cid} of generation ${commit.generation} where its parents make ${want}`)
  }

  private async receive(cid: CID): Promise<Uint8Array> {
    const bytes = await this.source.request(cid)
    if (!verifyBytes(cid, bytes)) throw new HashMismatchError(cid.toString())
    this.bytes += bytes.length
    return bytes
  }

  private stored(): void {
    this.objects++
    this.options.onProgress?.({ objects: this.objects, bytes: this.bytes, files: 0, expectedBytes: 0 })
  }
}

interface Link {
  readonly cid: CID
  readonly expect: Expect
}

/** A node's links with what each must be; decodeNode has already checked their codecs. */
function childLinks(node: Node, expect: Expect): Link[] {
  switch (node.type) {
    case 'commit':
      return [{ cid: node.tree, expect: DIR }, ...node.parents.map((cid): Link => ({ cid, expect: { type: 'commit' } }))]
    case 'dir':
      return node.entries.map((e): Link => ({
        cid: e.cid,
        expect: e.kind === 'dir' ? DIR : e.kind === 'file' ? { type: 'file', size: e.size } : { type: 'any' }
      }))
    case 'shard': {
      const region = expect.type === 'dir' ? expect.region : TOP_REGION
      return node.buckets.map((b): Link => ({ cid: b.cid, expect: { type: 'dir', region: bucketRegion(region, b) } }))
    }
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
  // A directory is a plain node or a shard (object/dir-layout.ts).
  const type = node.type === 'shard' ? 'dir' : node.type
  if (expect.type !== 'any' && type !== expect.type) throw new ProtocolError(`peer sent a ${node.type} for ${cid} where a ${expect.type} belongs`)
  if ((node.type === 'dir' || node.type === 'shard') && expect.type === 'dir') {
    try {
      checkDirNode(cid, node, expect.region)
    } catch (err) {
      if (!(err instanceof InvalidObjectError)) throw err
      throw new ProtocolError(`peer sent an invalid object ${cid}: ${err.message}`, err)
    }
  }
  if (node.type === 'file' && expect.type === 'file') {
    if (node.size !== expect.size) throw new ProtocolError(`peer sent a file node ${cid} of ${node.size} bytes where its parent says ${expect.size}`)
    if (expect.height !== undefined && node.height !== expect.height) {
      throw new ProtocolError(`peer sent a file node ${cid} of height ${node.height} where its parent needs ${expect.height}`)
    }
  }
  return node
}
