/**
 * Reading a file back out of its chunk tree, in order, a few chunks at a
 * time, so a 1 GiB file never sits in memory. Every node is checked against what
 * its parent declared (height one less, size as linked), so a damaged or
 * crafted tree is refused instead of written out: its depth stays bounded
 * by MAX_FILE_HEIGHT, and the bytes yielded add up to the size asked for.
 * Every chunk is hashed against its CID before it is yielded, so a store
 * damaged on disk cannot put wrong bytes into the share folder.
 */
import type { CID } from 'multiformats/cid'
import { HashMismatchError, InvalidObjectError, MissingObjectError } from '../errors.js'
import { RAW, cidKey, decodeFileNode, verifyBytes } from '../object/index.js'
import { type ObjectSource, getAll, mustGet } from './source.js'

/** Chunks read at once: overlaps store lookups while staying a few MiB at most. */
const READ_AHEAD = 16

/**
 * Yields the content of the file rooted at `cid`, READ_AHEAD chunks at a
 * time: while the caller handles one group (writes it out), the next is
 * read from the store. Reading a group only once the one before was
 * written took a 1 GiB file 5 s to write out. With `size` (a directory
 * entry's), the file must be exactly that long. Throws InvalidObjectError
 * when the tree does not hold together.
 */
export async function* fileChunkGroups(src: ObjectSource, cid: CID, size?: number): AsyncGenerator<Uint8Array[]> {
  let group: Leaf[] = []
  let reading: Promise<Uint8Array[]> | undefined
  const startReading = (leaves: Leaf[]): Promise<Uint8Array[]> => {
    const read = readLeaves(src, leaves)
    // Handled when awaited below; until then, and if the caller stops
    // first, its failure must not count as unhandled.
    read.catch(() => {})
    return read
  }
  for await (const leaf of fileLeaves(src, cid, size)) {
    group.push(leaf)
    if (group.length < READ_AHEAD) continue
    const next = startReading(group)
    group = []
    if (reading !== undefined) yield await reading
    reading = next
  }
  if (reading !== undefined) yield await reading
  if (group.length > 0) yield await readLeaves(src, group)
}

/**
 * Reads `leaves` from the store at once, each hashed against its CID and
 * checked against the size its parent declared.
 */
export async function readLeaves(src: ObjectSource, leaves: readonly Leaf[]): Promise<Uint8Array[]> {
  const found = await getAll(src, leaves.map((leaf) => leaf.cid))
  return found.map((chunk, j) => {
    const { cid, size } = leaves[j]!
    if (chunk === undefined) throw new MissingObjectError(cid.toString())
    if (!verifyBytes(cid, chunk)) throw new HashMismatchError(cid.toString())
    if (size !== undefined && chunk.length !== size) throw mismatch(cid, `is ${chunk.length} bytes, not ${size}`)
    return chunk
  })
}

/** One raw object of a file's content; `size` is what its parent declared (unknown for a root read without a size). */
export interface Leaf {
  readonly cid: CID
  readonly size: number | undefined
}

/**
 * Yields the raw objects of the file rooted at `cid`, in file order,
 * reading only its file nodes (which the store always has; see
 * store/interface.ts), so it works whether or not the content is here.
 * Checks every node as fileChunkGroups does. With `seen`, it skips every node
 * and chunk already in it and adds what it visits: a file may link one node
 * many times, and five objects can declare a 1 PiB file, whose leaves must
 * then not be listed one by one.
 */
export async function* fileLeaves(src: ObjectSource, cid: CID, size?: number, seen?: SeenObjects): AsyncGenerator<Leaf> {
  yield* leavesOf(src, cid, size, undefined, seen)
}

/** What fileLeaves has visited, by key: file nodes (`leaf` false) and raw leaves. */
export interface SeenObjects {
  has(key: string): boolean
  add(key: string, leaf: boolean): void
}

async function* leavesOf(src: ObjectSource, cid: CID, size: number | undefined, height: number | undefined, seen: SeenObjects | undefined, bytes?: Uint8Array): AsyncGenerator<Leaf> {
  if (seen !== undefined) {
    const key = seenKey(cid, size, height)
    if (seen.has(key)) return
    seen.add(key, cid.code === RAW)
  }
  if (cid.code === RAW) {
    yield { cid, size }
    return
  }
  const node = decodeFileNode(bytes ?? (await mustGet(src, cid)))
  if (size !== undefined && node.size !== size) throw mismatch(cid, `declares ${node.size} bytes, not ${size}`)
  if (height !== undefined && node.height !== height) throw mismatch(cid, `has height ${node.height}, not ${height}`)
  if (node.height === 0) {
    if (seen === undefined) yield* node.links
    else for (const link of node.links) yield* leavesOf(src, link.cid, link.size, undefined, seen)
    return
  }
  // The nodes below are read NODES_AT_ONCE at a time, in one round trip to
  // the store, instead of one at a time on the way down (for a 1 GiB file
  // once it was warm: 22 ms against 40 ms). Recursion is bounded: decoding
  // refuses a height over MAX_FILE_HEIGHT.
  for (let i = 0; i < node.links.length; i += NODES_AT_ONCE) {
    const links = node.links.slice(i, i + NODES_AT_ONCE)
    // Leaves and nodes seen already are not read.
    const wanted = links.flatMap((l, j) => (l.cid.code !== RAW && seen?.has(seenKey(l.cid, l.size, node.height - 1)) !== true ? [j] : []))
    const got = await getAll(src, wanted.map((j) => links[j]!.cid))
    const found: Array<Uint8Array | undefined> = []
    wanted.forEach((j, k) => { found[j] = got[k] })
    // A node not found is asked for again on the way down, which throws as it always did, in order.
    for (let j = 0; j < links.length; j++) yield* leavesOf(src, links[j]!.cid, links[j]!.size, node.height - 1, seen, found[j])
  }
}

/** Nodes below one node read at once: the links of one LEFT file node. */
const NODES_AT_ONCE = 64

/** A node is checked against what its parent expects, so it is seen per expectation. */
function seenKey(cid: CID, size: number | undefined, height: number | undefined): string {
  return cid.code === RAW ? cidKey(cid) : `${cidKey(cid)} ${size ?? ''} ${height ?? ''}`
}

function mismatch(cid: CID, what: string): InvalidObjectError {
  return new InvalidObjectError(`file tree does not hold together: ${cid} ${what}`)
}
