/**
 * Reading and editing directories of any size. A directory is one node or a
 * tree of shards (object/dir-layout.ts); through this file, diff, merge,
 * lookup and snapshot see sorted entry lists, or a diff that shows no order
 * sees them a bucket at a time, each sorted (only the codec and the walks
 * over raw objects, in fetch and maintenance, see shards themselves). Readers check the shard layout as they go: a bucket's
 * count, each shard's depth, and that every entry hashes into the bucket it
 * sits in, so a peer cannot hide a second entry of the same name in another
 * bucket.
 */
import type { CID } from 'multiformats/cid'
import { InvalidObjectError } from '../errors.js'
import { type Block, FLAT_DIR_MAX, SHARD_WIDTH, bucketAt, compareNames, decodeDirNode, encodeNode, layoutDir, nameHash } from '../object/index.js'
import type { DirEntry, DirNode, DirShard, ShardBucket } from '../object/index.js'
import { type ObjectSink, type ObjectSource, mustGet } from './source.js'

/** Where a node sits in its directory: the bucket indexes from the top, and the count its parent declared. */
export interface DirRegion {
  readonly path: readonly number[]
  readonly count?: number | undefined
}

/** A directory's own top node: a commit's tree, or what an entry of kind `dir` names. */
export const TOP_REGION: DirRegion = { path: [] }

/** A loaded node of a directory: entries, or buckets one level down. */
type Part =
  | { readonly kind: 'entries'; readonly entries: readonly DirEntry[] }
  | { readonly kind: 'shard'; readonly buckets: readonly ShardBucket[] }

const NOTHING: Part = { kind: 'entries', entries: [] }

async function loadPart(src: ObjectSource, cid: CID, region: DirRegion): Promise<Part> {
  const node = decodeDirNode(await mustGet(src, cid))
  checkDirNode(cid, node, region)
  return node.type === 'dir' ? { kind: 'entries', entries: node.entries } : { kind: 'shard', buckets: node.buckets }
}

/**
 * Throws InvalidObjectError unless the decoded directory node `cid` fits
 * where it sits: a bucket holds the count its shard declares, a shard has
 * the depth of its place, and every entry of a bucket hashes into it.
 */
export function checkDirNode(cid: CID, node: DirNode | DirShard, region: DirRegion): void {
  const depth = region.path.length
  if (node.type === 'dir') {
    if (region.count !== undefined && node.entries.length !== region.count) throw new InvalidObjectError(`directory bucket ${cid} does not hold the count its shard declares`)
    if (depth > 0) {
      for (const e of node.entries) {
        const hash = nameHash(e.name)
        if (region.path.some((b, d) => bucketAt(hash, d) !== b)) throw new InvalidObjectError(`entry ${JSON.stringify(e.name)} sits in the wrong bucket of ${cid}`)
      }
    }
    return
  }
  if (node.depth !== depth) throw new InvalidObjectError(`shard ${cid} has depth ${node.depth} where ${depth} belongs`)
  if (region.count !== undefined && node.buckets.reduce((n, b) => n + b.count, 0) !== region.count) {
    throw new InvalidObjectError(`shard ${cid} does not hold the count its parent declares`)
  }
}

/** Where bucket `b` of a shard at `region` sits. */
export function bucketRegion(region: DirRegion, b: ShardBucket): DirRegion {
  return { path: [...region.path, b.index], count: b.count }
}

/** Every entry of the directory `cid`, sorted by name. */
export async function readDir(src: ObjectSource, cid: CID): Promise<DirEntry[]> {
  return readRegion(src, cid, TOP_REGION)
}

async function readRegion(src: ObjectSource, cid: CID, region: DirRegion): Promise<DirEntry[]> {
  const out: DirEntry[] = []
  let pieces = 0
  const stack: Array<{ cid: CID; region: DirRegion }> = [{ cid, region }]
  while (stack.length > 0) {
    const top = stack.pop()!
    const part = await loadPart(src, top.cid, top.region)
    if (part.kind === 'entries') {
      out.push(...part.entries)
      pieces++
    } else for (const b of part.buckets) stack.push({ cid: b.cid, region: bucketRegion(top.region, b) })
  }
  return pieces > 1 ? sortByName(out) : out
}

/** The entry called `name` in the directory `cid`, or undefined; reads one node per shard level. */
export async function findEntry(src: ObjectSource, cid: CID, name: string): Promise<DirEntry | undefined> {
  let hash: Uint8Array | undefined
  let region = TOP_REGION
  let at = cid
  for (;;) {
    const part = await loadPart(src, at, region)
    if (part.kind === 'entries') return part.entries.find((e) => e.name === name)
    hash ??= nameHash(name)
    const index = bucketAt(hash, region.path.length)
    const b = part.buckets.find((x) => x.index === index)
    if (b === undefined) return undefined
    region = bucketRegion(region, b)
    at = b.cid
  }
}

/**
 * The entries of the directories `sides` (undefined: empty), leaving out
 * every shard bucket where sides `pair[0]` and `pair[1]` hold the same CID:
 * those buckets hold the same entries on both, so a diff or merge that
 * compares the two needs nothing from them. Each list is sorted by name.
 * Two plain directory nodes are read whole, as before sharding.
 */
export async function dirDelta(src: ObjectSource, sides: ReadonlyArray<CID | undefined>, pair: readonly [number, number] = [0, 1]): Promise<DirEntry[][]> {
  const out = sides.map((): DirEntry[] => [])
  let pieces = 0
  for await (const group of dirDeltaGroups(src, sides, pair)) {
    pieces++
    for (let k = 0; k < sides.length; k++) for (const e of group[k]!) out[k]!.push(e)
  }
  return pieces > 1 ? out.map(sortByName) : out
}

/**
 * dirDelta a group of names at a time: each group is one region of the
 * shards (names that hash alike), with every side's entries there, each
 * list sorted by name; no name is in two groups. A walk that takes the
 * groups one by one holds one bucket of a huge directory at a time, where
 * dirDelta holds all its entries.
 */
export async function* dirDeltaGroups(src: ObjectSource, sides: ReadonlyArray<CID | undefined>, pair: readonly [number, number] = [0, 1]): AsyncGenerator<Array<readonly DirEntry[]>> {
  // A side is a node to read (`cids`), or, below a plain node met beside
  // a shard, the part of its entries that falls in this bucket (`lists`).
  interface Region { cids: ReadonlyArray<CID | undefined>; regions: readonly DirRegion[]; lists?: ReadonlyArray<readonly DirEntry[] | undefined> }
  const stack: Region[] = [{ cids: sides, regions: sides.map(() => TOP_REGION) }]
  while (stack.length > 0) {
    const { cids, regions, lists } = stack.pop()!
    const blank = (k: number): boolean => cids[k] === undefined && (lists?.[k]?.length ?? 0) === 0
    const [a, b] = [cids[pair[0]], cids[pair[1]]]
    if (blank(pair[0]) && blank(pair[1])) continue
    if (a !== undefined && b !== undefined && a.equals(b)) continue
    const parts = await Promise.all(cids.map((c, k): Part | Promise<Part> => {
      const list = lists?.[k]
      if (list !== undefined) return { kind: 'entries', entries: list }
      return c === undefined ? NOTHING : loadPart(src, c, regions[k]!)
    }))
    if (parts.some((p) => p.kind === 'shard')) {
      // Split every side the same way here, a plain node's entries by the
      // bucket their names hash to, and compare bucket by bucket.
      const depth = regions[parts.findIndex((p) => p.kind === 'shard')]!.path.length
      const hashed = parts.map((p) => (p.kind === 'entries' ? p.entries.map((e) => ({ e, bucket: bucketAt(nameHash(e.name), depth) })) : []))
      for (let index = SHARD_WIDTH - 1; index >= 0; index--) {
        const next = parts.map((p) => (p.kind === 'shard' ? p.buckets.find((x) => x.index === index) : undefined))
        const below = hashed.map((h) => h.filter((x) => x.bucket === index).map((x) => x.e))
        if (next.every((x) => x === undefined) && below.every((l) => l.length === 0)) continue
        stack.push({
          cids: next.map((x) => x?.cid),
          regions: next.map((x, k) => (x === undefined ? { path: [...regions[k]!.path, index] } : bucketRegion(regions[k]!, x))),
          lists: parts.map((p, k) => (p.kind === 'entries' ? below[k] : undefined))
        })
      }
      continue
    }
    yield parts.map((p) => (p.kind === 'entries' ? p.entries : []))
  }
}

/** A directory after an edit. */
export interface EditedDir {
  readonly cid: CID
  /** Its entries, all the way down: 0 means the empty directory. */
  readonly count: number
}

/**
 * Applies `edits` (name → the new entry, or undefined to remove it) to the
 * directory `cid` (undefined: empty), puts the new nodes into `sink`, and
 * returns the result. Only the buckets the edits touch are read or
 * rewritten, and the result has the canonical layout of its entries.
 */
export async function editDir(src: ObjectSource, sink: ObjectSink, cid: CID | undefined, edits: ReadonlyMap<string, DirEntry | undefined>): Promise<EditedDir> {
  const list = [...edits].map(([name, entry]) => ({ name, entry, hash: nameHash(name) }))
  const result = await editRegion(src, cid, TOP_REGION, list)
  const blocks = result.count === 0 ? layoutDir([]).blocks : result.blocks
  for (const block of blocks) await sink.put(block)
  return { cid: blocks[blocks.length - 1]!.cid, count: result.count }
}

interface Edit {
  readonly name: string
  readonly entry: DirEntry | undefined
  readonly hash: Uint8Array
}

interface EditedRegion {
  readonly count: number
  /** New blocks, children first; the last is the region's node (none when count is 0). */
  readonly blocks: readonly Block[]
  /** The region's entries, when it fits one node. */
  readonly entries?: readonly DirEntry[]
}

async function editRegion(src: ObjectSource, cid: CID | undefined, region: DirRegion, edits: readonly Edit[]): Promise<EditedRegion> {
  const depth = region.path.length
  const part = cid === undefined ? NOTHING : await loadPart(src, cid, region)
  if (part.kind === 'entries') {
    const byName = new Map(part.entries.map((e) => [e.name, e]))
    for (const e of edits) {
      if (e.entry === undefined) byName.delete(e.name)
      else byName.set(e.name, { ...e.entry, name: e.name })
    }
    const entries = sortByName([...byName.values()])
    return relaid(entries, depth)
  }
  const buckets: Array<{ index: number; count: number; cid: CID; entries?: readonly DirEntry[] }> = []
  const blocks: Block[] = []
  for (let index = 0; index < SHARD_WIDTH; index++) {
    const old = part.buckets.find((b) => b.index === index)
    const mine = edits.filter((e) => bucketAt(e.hash, depth) === index)
    if (mine.length === 0) {
      if (old !== undefined) buckets.push(old)
      continue
    }
    const child = await editRegion(src, old?.cid, old === undefined ? { path: [...region.path, index] } : bucketRegion(region, old), mine)
    if (child.count === 0) continue
    for (const b of child.blocks) blocks.push(b)
    buckets.push({ index, count: child.count, cid: child.blocks[child.blocks.length - 1]!.cid, ...(child.entries ? { entries: child.entries } : {}) })
  }
  const count = buckets.reduce((n, b) => n + b.count, 0)
  if (count <= FLAT_DIR_MAX) {
    // Too few left to stay split: the region becomes one node again, and
    // the bucket nodes just made are not needed.
    const entries: DirEntry[] = []
    for (const b of buckets) entries.push(...(b.entries ?? (await readRegion(src, b.cid, bucketRegion(region, b)))))
    return relaid(sortByName(entries), depth)
  }
  const top = encodeNode({ type: 'shard', depth, buckets: buckets.map(({ index, count: n, cid: c }) => ({ index, count: n, cid: c })) })
  return { count, blocks: [...blocks, top] }
}

function relaid(entries: readonly DirEntry[], depth: number): EditedRegion {
  if (entries.length === 0) return { count: 0, blocks: [] }
  const { blocks } = layoutDir(entries, depth)
  return { count: entries.length, blocks, ...(entries.length <= FLAT_DIR_MAX ? { entries } : {}) }
}

/** Sorts entries by the UTF-8 bytes of their names (a copy). */
export function sortByName<T extends { readonly name: string }>(entries: readonly T[]): T[] {
  return [...entries].sort((x, y) => compareNames(x.name, y.name))
}

/**
 * A value for the directory `root` and every directory below it, children
 * before parents, with an explicit stack (trees can be deeper than the call
 * stack). `done` holds the values by CID string and may be shared between
 * calls, so a subtree met before is not opened again. `read` lists a
 * directory; `visit` makes its value, and finds its subdirectories' in `done`.
 */
export async function foldDirs<T>(
  root: CID,
  done: Map<string, T>,
  read: (cid: CID) => Promise<readonly DirEntry[]>,
  visit: (cid: CID, entries: readonly DirEntry[]) => T | Promise<T>
): Promise<T> {
  const stack: Array<{ cid: CID; entries?: readonly DirEntry[] }> = [{ cid: root }]
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!
    const key = top.cid.toString()
    if (done.has(key)) {
      stack.pop()
      continue
    }
    if (top.entries === undefined) {
      top.entries = await read(top.cid)
      for (const e of top.entries) if (e.kind === 'dir' && !done.has(e.cid.toString())) stack.push({ cid: e.cid })
      continue
    }
    done.set(key, await visit(top.cid, top.entries))
    stack.pop()
  }
  return done.get(root.toString())!
}
