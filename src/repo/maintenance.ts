/**
 * fsck and gc: the two whole-store walks. Both start from every ref (HEAD,
 * the reflog); fsck re-hashes what it reaches, gc deletes what
 * it does not.
 */
import type { CID } from 'multiformats/cid'
import { InvalidObjectError, LeftError } from '../errors.js'
import { RAW, objectLinks, verifyBytes } from '../object/index.js'
import type { ObjectStore } from '../store/index.js'

/** What fsck found. */
export interface FsckReport {
  readonly objects: number
  readonly bytes: number
  /** CIDs that something links to but the store lacks. */
  readonly missing: string[]
  /**
   * CIDs whose bytes do not hash to them or do not decode, and CIDs the
   * store lists but cannot read (chunk data lost, damaged table bytes).
   */
  readonly corrupt: string[]
}

/** What a walk does with an object it cannot read. */
interface Unreadable {
  /** Not in the store at all: `listed` false. Listed but its bytes are gone or unreadable: `listed` true. */
  (cid: CID, listed: boolean, err?: unknown): void
}

/**
 * Walks everything reachable from the refs, depth first with an explicit
 * stack (histories can be deeper than the call stack), calling `visit` once
 * per stored object and `onUnreadable` for each one it cannot read.
 */
async function walkReachable(store: ObjectStore, visit: (cid: CID, bytes: Uint8Array) => CID[] | undefined, onUnreadable: Unreadable, readLeaves = true): Promise<Set<string>> {
  const seen = new Set<string>()
  const stack: CID[] = (await store.listRefs()).map(([, cid]) => cid)
  while (stack.length > 0) {
    const cid = stack.pop()!
    const key = cid.toString()
    if (seen.has(key)) continue
    seen.add(key)
    // Raw leaves link nowhere; gc only needs their names, not their bytes.
    if (!readLeaves && cid.code === RAW) continue
    let bytes: Uint8Array | undefined
    try {
      bytes = await store.get(cid)
    } catch (err) {
      // LevelDB refuses a damaged table block: the store has it, but not whole.
      onUnreadable(cid, true, err)
      continue
    }
    if (bytes === undefined) {
      onUnreadable(cid, await store.has(cid))
      continue
    }
    for (const link of visit(cid, bytes) ?? []) if (!seen.has(link.toString())) stack.push(link)
  }
  return seen
}

/** Re-hashes every reachable object and reports what is missing or corrupt. */
export async function fsck(store: ObjectStore, onObject?: (bytes: number) => void): Promise<FsckReport> {
  let objects = 0
  let bytesTotal = 0
  const missing: string[] = []
  const corrupt: string[] = []
  await walkReachable(store, (cid, bytes) => {
    objects++
    bytesTotal += bytes.length
    onObject?.(bytes.length)
    if (!verifyBytes(cid, bytes)) {
      corrupt.push(cid.toString())
      return undefined
    }
    try {
      return objectLinks(cid, bytes)
    } catch (err) {
      if (err instanceof InvalidObjectError) {
        corrupt.push(cid.toString())
        return undefined
      }
      throw err
    }
  }, (cid, listed) => (listed ? corrupt : missing).push(cid.toString()))
  return { objects, bytes: bytesTotal, missing, corrupt }
}

/** Deletes every object no ref reaches, staged fetch leftovers, and the stat cache. */
export async function gc(store: ObjectStore, onObject?: (bytes: number) => void): Promise<{ removed: number; kept: number }> {
  // A node it cannot read or decode may link to objects it would then
  // delete: stop before deleting anything.
  const unreadable = (cid: CID, err?: unknown): LeftError => new LeftError('LEFT_FSCK_FAILED', `gc stopped: ${cid} is in the store but cannot be read; run left fsck`, { cause: err })
  const reachable = await walkReachable(store, (cid, bytes) => {
    onObject?.(bytes.length)
    try {
      return objectLinks(cid, bytes)
    } catch (err) {
      throw err instanceof InvalidObjectError ? unreadable(cid, err) : err
    }
  }, (cid, listed, err) => {
    if (listed) throw unreadable(cid, err)
  }, false)
  const doomed: CID[] = []
  let kept = 0
  for await (const cid of store.objectCids()) {
    if (reachable.has(cid.toString())) kept++
    else doomed.push(cid)
  }
  // One atomic batch: a crash mid-gc must not leave a parent without its children.
  await store.deleteObjects(doomed)
  await store.clearStaging()
  await store.write({ clearStat: true })
  return { removed: doomed.length, kept }
}
