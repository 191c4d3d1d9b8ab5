/**
 * `left migrate`: rewrites a store of object format 1 as format 2. Commits
 * gain their generation and directories of more than 256 entries become
 * shards; chunks and file nodes stay as they are, so no content is read or
 * written again. The rewrite is a pure function of the old objects, so
 * peers that held the same history before hold the same history after,
 * each migrating on its own.
 *
 * Crash-safe: new objects are written first, children before parents, and
 * the refs, thin marks and format mark move in one last atomic write. A
 * kill before it leaves a format 1 store with some unreferenced objects, and
 * `left migrate` simply runs again; a kill after it leaves the old objects
 * for the next gc.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { HashMismatchError, InvalidObjectError } from '../errors.js'
import { type Block, type DirEntry, OBJECT_FORMAT, compareBytes, decodeNode, encodeNode, isLeftCid, isValidName, layoutDir, verifyBytes } from '../object/index.js'
import type { ObjectStore } from '../store/index.js'
import { generationAfter } from '../history/ancestry.js'
import { foldDirs, sortByName } from '../tree/directory.js'
import { mustGet } from '../tree/source.js'

/** What a migration did. */
export interface MigrateResult {
  /** The format the store was in. */
  readonly from: number
  readonly commits: number
  /** Directories whose node changed: they held more than 256 entries, or one below did. */
  readonly directories: number
  /** HEAD after, if there is one. */
  readonly head?: CID | undefined
}

/** A format 1 commit: a format 2 one without its generation. */
interface OldCommit {
  readonly tree: CID
  readonly parents: readonly CID[]
  readonly author: string
  readonly time: number
  readonly message: string
}

/** Blocks written per store write. */
const BATCH = 1000

/** Rewrites every commit and tree the refs reach into object format 2, then moves the refs. */
export async function migrateStore(store: ObjectStore, from: number): Promise<MigrateResult> {
  const refs = await store.listRefs()
  const thin = await store.thinCommits()
  const oldCommits = new Map<string, OldCommit>()
  const pending = refs.map(([, cid]) => cid)
  while (pending.length > 0) {
    const cid = pending.pop()!
    if (oldCommits.has(cid.toString())) continue
    const commit = oldCommit(await verified(store, cid))
    oldCommits.set(cid.toString(), commit)
    for (const p of commit.parents) pending.push(p)
  }

  const out: Block[] = []
  const commitCids: CID[] = []
  const flush = async (force: boolean): Promise<void> => {
    if (out.length < BATCH && !force) return
    // Format 2 must read what is written: an old object that broke a rule
    // stops the migration here, before any ref moves.
    for (const b of out) decodeNode(b.bytes)
    await store.write({ blocks: out.splice(0), commits: commitCids.splice(0) })
  }
  const trees = new Map<string, CID>()
  let directories = 0
  /** The format 2 directory of a format 1 one, written bottom-up. */
  const migrateTree = (root: CID): Promise<CID> => foldDirs(root, trees, async (cid) => oldDir(await verified(store, cid)), async (cid, old) => {
    const entries = old.map((e) => (e.kind === 'dir' ? { ...e, cid: trees.get(e.cid.toString())! } : e))
    const { root: node, blocks } = layoutDir(sortByName(entries))
    if (!node.cid.equals(cid)) {
      directories++
      for (const b of blocks) out.push(b)
    }
    await flush(false)
    return node.cid
  })

  // Parents before children, without recursion: histories are long.
  const commits = new Map<string, { cid: CID; generation: number }>()
  const order: string[] = []
  const visit: Array<{ key: string; expanded: boolean }> = refs.map(([, cid]) => ({ key: cid.toString(), expanded: false }))
  const placed = new Set<string>()
  while (visit.length > 0) {
    const top = visit.pop()!
    if (placed.has(top.key)) continue
    if (top.expanded) {
      placed.add(top.key)
      order.push(top.key)
      continue
    }
    visit.push({ key: top.key, expanded: true })
    for (const p of oldCommits.get(top.key)!.parents) if (!placed.has(p.toString())) visit.push({ key: p.toString(), expanded: false })
  }
  for (const key of order) {
    const old = oldCommits.get(key)!
    const parents = old.parents.map((p) => commits.get(p.toString())!)
    const generation = generationAfter(parents)
    const block = encodeNode({
      type: 'commit',
      tree: await migrateTree(old.tree),
      parents: parents.map((p) => p.cid).sort((a, b) => compareBytes(a.bytes, b.bytes)),
      generation,
      author: old.author,
      time: old.time,
      message: old.message
    })
    commits.set(key, { cid: block.cid, generation })
    out.push(block)
    commitCids.push(block.cid)
    await flush(false)
  }
  await flush(true)
  const moved: Record<string, CID> = {}
  for (const [name, cid] of refs) moved[name] = commits.get(cid.toString())!.cid
  // HEAD's content is here by definition: it is never thin.
  const head = refs.find(([name]) => name === 'HEAD')?.[1].toString()
  const nowThin = [...thin].flatMap((key) => {
    const c = commits.get(key)
    return c === undefined || key === head ? [] : [c.cid]
  })
  // Nodes an interrupted fetch staged are format 1: fetch them again.
  await store.clearStaging()
  await store.write({ refs: moved, thin: nowThin, format: OBJECT_FORMAT })
  return { from, commits: order.length, directories, head: moved['HEAD'] }
}

/**
 * An old object's bytes, checked against its CID: a damaged object must stop
 * the migration, not become a valid new one that hides the damage.
 */
async function verified(store: ObjectStore, cid: CID): Promise<Uint8Array> {
  const bytes = await mustGet(store, cid)
  if (!verifyBytes(cid, bytes)) throw new HashMismatchError(cid.toString())
  return bytes
}

function decodeMap(bytes: Uint8Array, type: string): Record<string, unknown> {
  let data: unknown
  try {
    data = dagCbor.decode(bytes)
  } catch (err) {
    throw new InvalidObjectError('object is not valid dag-cbor', err)
  }
  if (typeof data !== 'object' || data === null || (data as { type?: unknown }).type !== type) throw new InvalidObjectError(`expected a format 1 ${type}`)
  return data as Record<string, unknown>
}

function oldCommit(bytes: Uint8Array): OldCommit {
  const d = decodeMap(bytes, 'commit')
  const { tree, parents, author, time, message } = d
  if (!isLeftCid(tree) || !Array.isArray(parents) || !parents.every(isLeftCid) || typeof author !== 'string' || typeof time !== 'number' || typeof message !== 'string') {
    throw new InvalidObjectError('not a format 1 commit')
  }
  return { tree, parents: parents as CID[], author, time, message }
}

function oldDir(bytes: Uint8Array): DirEntry[] {
  const raw = decodeMap(bytes, 'dir')['entries']
  if (!Array.isArray(raw)) throw new InvalidObjectError('not a format 1 directory')
  return raw.map((e: Record<string, unknown>) => {
    const { name, kind, cid, size, mtime, exec } = e
    if (!isValidName(name) || (kind !== 'file' && kind !== 'dir' && kind !== 'link') || !isLeftCid(cid) ||
        typeof size !== 'number' || typeof mtime !== 'number' || typeof exec !== 'boolean') {
      throw new InvalidObjectError('not a format 1 directory entry')
    }
    return { name, kind, cid, size, mtime, exec }
  })
}
