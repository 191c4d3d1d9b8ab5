/**
 * fsck and gc: the two whole-store walks. Both start from every ref (HEAD,
 * the reflog) and walk all history and every tree; fsck re-hashes what it
 * reaches, gc deletes what it does not.
 *
 * Content is where they differ from a plain reachability walk. The content
 * of a thin commit (fetched as history only, or forgotten; see
 * store/interface.ts) need not be here: fsck counts it as absent, not
 * missing, and gc keeps only the content that some other commit, or HEAD,
 * reaches. So trees are walked in two passes: first from the commits whose
 * content must be here, then from the thin ones, skipping what the first
 * pass saw.
 */
import type { CID } from 'multiformats/cid'
import { InvalidObjectError, LeftError } from '../errors.js'
import { RAW, decodeNode, verifyBytes } from '../object/index.js'
import type { Node } from '../object/index.js'
import { foldDirs, readDir } from '../tree/directory.js'
import { loadCommit, loadFileNode } from '../tree/source.js'
import type { ObjectStore } from '../store/index.js'

/** What fsck found. */
export interface FsckReport {
  readonly objects: number
  readonly bytes: number
  /** CIDs that something links to but the store lacks, where it must have them. */
  readonly missing: string[]
  /**
   * CIDs whose bytes do not hash to them or do not decode, and CIDs the
   * store lists but cannot read (chunk data lost, damaged table bytes).
   */
  readonly corrupt: string[]
  /** Content of thin commits only that is not here by design: never fetched, or forgotten. */
  readonly absent: { readonly chunks: number; readonly bytes: number }
}

/** What a walk does at each object. */
interface WalkHooks {
  /** Whether to read content (raw objects): fsck re-hashes it, gc only needs names. */
  readonly readContent: boolean
  /** A read object; false when it is damaged (its links are then not followed). */
  check(cid: CID, bytes: Uint8Array): boolean
  /** A node that does not decode. */
  undecodable(cid: CID, err: InvalidObjectError): void
  /** Not in the store at all: `listed` false. Listed but its bytes are gone or unreadable: `listed` true. */
  unreadable(cid: CID, listed: boolean, err?: unknown): void
  /** Content of thin commits only, not in the store: `size` as its parent declared. */
  absent?(cid: CID, size: number): void
  /** Called between the two tree passes with what the first reached: every commit, and all of the trees whose content must be here. */
  fullReached?(reached: ReadonlySet<string>): void | Promise<void>
}

/** What a walk saw: everything it reached, and the content among it that must be kept. */
interface Reached {
  /** Every structure node reached, and the content reached from commits that are not thin. */
  readonly kept: Set<string>
}

/** A link to follow, with the size its parent declares (content only). */
interface Link {
  readonly cid: CID
  readonly size?: number
}

/**
 * Walks everything reachable from the refs with explicit stacks (histories
 * and trees can be deeper than the call stack): history first, then the
 * trees of commits whose content must be here, then those of thin commits.
 */
async function walkStore(store: ObjectStore, hooks: WalkHooks): Promise<Reached> {
  const thin = await store.thinCommits()
  const head = (await store.getRef('HEAD'))?.toString()
  const kept = new Set<string>()
  const read = async (cid: CID): Promise<Node | undefined> => {
    let bytes: Uint8Array | undefined
    try {
      bytes = await store.get(cid)
    } catch (err) {
      // LevelDB refuses a damaged table block: the store has it, but not whole.
      hooks.unreadable(cid, true, err)
      return undefined
    }
    if (bytes === undefined) {
      hooks.unreadable(cid, await store.has(cid))
      return undefined
    }
    if (!hooks.check(cid, bytes) || cid.code === RAW) return undefined
    try {
      return decodeNode(bytes)
    } catch (err) {
      if (err instanceof InvalidObjectError) hooks.undecodable(cid, err)
      else throw err
      return undefined
    }
  }

  // History: every commit, and which trees must have their content here.
  const fullTrees: CID[] = []
  const thinTrees: CID[] = []
  const commits: CID[] = (await store.listRefs()).map(([, cid]) => cid)
  while (commits.length > 0) {
    const cid = commits.pop()!
    const key = cid.toString()
    if (kept.has(key)) continue
    kept.add(key)
    const node = await read(cid)
    if (node === undefined) continue
    if (node.type !== 'commit') {
      fullTrees.push(cid)
      continue
    }
    ;(thin.has(key) && key !== head ? thinTrees : fullTrees).push(node.tree)
    for (const p of node.parents) if (!kept.has(p.toString())) commits.push(p)
  }

  // Trees: content under a commit that is not thin must be here.
  const seenThin = new Set<string>()
  const walkTree = async (root: CID, full: boolean): Promise<void> => {
    const stack: Link[] = [{ cid: root }]
    while (stack.length > 0) {
      const link = stack.pop()!
      const key = link.cid.toString()
      if (kept.has(key) || seenThin.has(key)) continue
      const content = link.cid.code === RAW
      if (content && !full) {
        seenThin.add(key)
        // gc neither keeps nor reads this content: no need to look it up.
        if (hooks.absent === undefined && !hooks.readContent) continue
        if (!(await store.has(link.cid))) {
          hooks.absent?.(link.cid, link.size ?? 0)
          continue
        }
      } else kept.add(key)
      if (content && !hooks.readContent) continue
      const node = await read(link.cid)
      if (node !== undefined) stack.push(...linksOf(node))
    }
  }
  for (const tree of fullTrees) await walkTree(tree, true)
  await hooks.fullReached?.(kept)
  for (const tree of thinTrees) await walkTree(tree, false)
  return { kept }
}

/** A tree node's links, with the sizes of content links. */
function linksOf(node: Node): Link[] {
  switch (node.type) {
    case 'commit':
      return []
    case 'dir':
      return node.entries.map((e) => ({ cid: e.cid, size: e.size }))
    case 'shard':
      return node.buckets.map((b) => ({ cid: b.cid }))
    case 'file':
      return node.links.map((l) => ({ cid: l.cid, size: l.size }))
  }
}

/** Re-hashes every reachable object and reports what is missing, corrupt or absent by design. */
export async function fsck(store: ObjectStore, onObject?: (bytes: number) => void): Promise<FsckReport> {
  let objects = 0
  let bytesTotal = 0
  const missing: string[] = []
  const corrupt: string[] = []
  const absent = { chunks: 0, bytes: 0 }
  await walkStore(store, {
    readContent: true,
    check(cid, bytes) {
      objects++
      bytesTotal += bytes.length
      onObject?.(bytes.length)
      if (verifyBytes(cid, bytes)) return true
      corrupt.push(cid.toString())
      return false
    },
    undecodable: (cid) => void corrupt.push(cid.toString()),
    unreadable: (cid, listed) => void (listed ? corrupt : missing).push(cid.toString()),
    absent(_cid, size) {
      absent.chunks++
      absent.bytes += size
    }
  })
  return { objects, bytes: bytesTotal, missing, corrupt, absent }
}

/**
 * Deletes every object no ref reaches, the content that only thin commits
 * reach, staged fetch leftovers, and the stat cache entries that name a
 * file whose content it may delete or a directory node it may delete. The
 * rest of the stat cache stays, so the next commit does not re-read the
 * whole folder.
 */
export async function gc(store: ObjectStore, onObject?: (bytes: number) => void): Promise<{ removed: number; kept: number }> {
  // A node it cannot read or decode may link to objects it would then
  // delete: stop before deleting anything.
  const unreadable = (cid: CID, err?: unknown): LeftError => new LeftError('LEFT_FSCK_FAILED', `gc stopped: ${cid} is in the store but cannot be read; run left fsck`, { cause: err })
  const stale = new Map<string, null>()
  const { kept: reachable } = await walkStore(store, {
    readContent: false,
    async fullReached(reached) {
      // A file whose root is not below HEAD or a kept commit may lose its
      // content now; a directory entry (its key ends in '/') whose node is
      // not reached may lose its node. Both are dropped by their keys.
      for (const [key, entry] of await store.loadStatCache()) if (!reached.has(entry.cid)) stale.set(key, null)
    },
    check(_cid, bytes) {
      onObject?.(bytes.length)
      return true
    },
    undecodable(cid, err) {
      throw unreadable(cid, err)
    },
    unreadable(cid, listed, err) {
      if (listed) throw unreadable(cid, err)
    }
  })
  const doomed: CID[] = []
  let kept = 0
  for await (const cid of store.objectCids()) {
    if (reachable.has(cid.toString())) kept++
    else doomed.push(cid)
  }
  // First, so that a crash after the deletion cannot leave the cache
  // vouching for a file whose content is gone: the next commit would trust it.
  await store.write({ stat: stale })
  // One atomic batch: a crash mid-gc must not leave a parent without its children.
  await store.deleteObjects(doomed)
  await store.clearStaging()
  return { removed: doomed.length, kept }
}

/** What `left stats` reports about the store's content. */
export interface ContentStats {
  /** Commits reachable from the refs. */
  readonly commits: number
  /** Of those, the thin ones: history only, their content not kept. */
  readonly thinCommits: number
  /** The size of every commit's snapshot, added up: what a copy of each version would take. */
  readonly versionsBytes: number
  /** Content any commit references, each chunk counted once. */
  readonly referencedBytes: number
  /** Of that, the content that is here. */
  readonly keptBytes: number
}

/**
 * Adds up the store's content: each directory and file node is read once
 * however many commits share it, and chunks are counted by the sizes their
 * parents declare, so no content is read.
 */
export async function contentStats(store: ObjectStore): Promise<ContentStats> {
  const thin = await store.thinCommits()
  const seenCommits = new Set<string>()
  const trees: CID[] = []
  const pending = (await store.listRefs()).map(([, cid]) => cid)
  while (pending.length > 0) {
    const cid = pending.pop()!
    if (seenCommits.has(cid.toString())) continue
    seenCommits.add(cid.toString())
    const commit = await loadCommit(store, cid)
    trees.push(commit.tree)
    for (const p of commit.parents) pending.push(p)
  }
  /** Each directory's size, once computed. */
  const dirSize = new Map<string, number>()
  /** Every chunk referenced, by key. */
  const chunks = new Map<string, { cid: CID; size: number }>()
  const fileNodes = new Set<string>()
  const addContent = async (root: CID, size: number): Promise<void> => {
    const stack: Link[] = [{ cid: root, size }]
    while (stack.length > 0) {
      const l = stack.pop()!
      const key = l.cid.toString()
      if (l.cid.code === RAW) {
        chunks.set(key, { cid: l.cid, size: l.size ?? 0 })
        continue
      }
      if (fileNodes.has(key)) continue
      fileNodes.add(key)
      stack.push(...linksOf(await loadFileNode(store, l.cid)))
    }
  }
  let versionsBytes = 0
  for (const tree of trees) {
    // A directory's size once its subdirectories' are known.
    versionsBytes += await foldDirs(tree, dirSize, (cid) => readDir(store, cid), async (_cid, entries) => {
      let size = 0
      for (const e of entries) {
        if (e.kind === 'dir') size += dirSize.get(e.cid.toString()) ?? 0
        else {
          size += e.size
          await addContent(e.cid, e.size)
        }
      }
      return size
    })
  }
  let referencedBytes = 0
  let keptBytes = 0
  const all = [...chunks.values()]
  for (let i = 0; i < all.length; i += 1024) {
    const batch = all.slice(i, i + 1024)
    const here = await store.hasMany(batch.map((c) => c.cid))
    batch.forEach((c, j) => {
      referencedBytes += c.size
      if (here[j]) keptBytes += c.size
    })
  }
  const thinCommits = [...seenCommits].filter((c) => thin.has(c)).length
  return { commits: seenCommits.size, thinCommits, versionsBytes, referencedBytes, keptBytes }
}
