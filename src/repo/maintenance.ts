/**
 * fsck and gc: the two whole-store walks. Both start from every ref (HEAD,
 * the reflog); fsck re-hashes what it reaches, gc deletes what
 * it does not.
 */
import type { CID } from 'multiformats/cid'
import { InvalidObjectError, LeftError } from '../errors.js'
import { RAW, objectLinks, verifyBytes } from '../object/index.js'
import type { Store } from '../store/index.js'

/** What fsck found. */
export interface FsckReport {
  readonly objects: number
  readonly bytes: number
  /** CIDs that something links to but the store lacks. */
  readonly missing: string[]
  /** CIDs whose bytes do not hash to them, or do not decode. */
  readonly corrupt: string[]
}

/**
 * Walks everything reachable from the refs, depth first with an explicit
 * stack (histories can be deeper than the call stack), calling `visit` once
 * per stored object.
 */
async function walkReachable(store: Store, visit: (cid: CID, bytes: Uint8Array) => CID[] | undefined, onMissing: (cid: CID) => void, readLeaves = true): Promise<Set<string>> {
  const seen = new Set<string>()
  const stack: CID[] = (await store.listRefs()).map(([, cid]) => cid)
  while (stack.length > 0) {
    const cid = stack.pop()!
    const key = cid.toString()
    if (seen.has(key)) continue
    seen.add(key)
    // Raw leaves link nowhere; gc only needs their names, not their bytes.
    if (!readLeaves && cid.code === RAW) continue
    const bytes = await store.get(cid)
    if (bytes === undefined) {
      onMissing(cid)
      continue
    }
    for (const link of visit(cid, bytes) ?? []) if (!seen.has(link.toString())) stack.push(link)
  }
  return seen
}

/** Re-hashes every reachable object and reports what is missing or corrupt. */
export async function fsck(store: Store): Promise<FsckReport> {
  let objects = 0
  let bytesTotal = 0
  const missing: string[] = []
  const corrupt: string[] = []
  await walkReachable(store, (cid, bytes) => {
    objects++
    bytesTotal += bytes.length
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
  }, (cid) => missing.push(cid.toString()))
  return { objects, bytes: bytesTotal, missing, corrupt }
}

/** Deletes every object no ref reaches, staged fetch leftovers, and the stat cache. */
export async function gc(store: Store): Promise<{ removed: number; kept: number }> {
  const reachable = await walkReachable(store, (cid, bytes) => objectLinks(cid, bytes), () => {}, false)
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

/** Throws unless a report is clean; used by tests and `left fsck`'s exit code. */
export function assertClean(report: FsckReport): void {
  if (report.missing.length + report.corrupt.length > 0) {
    throw new LeftError('LEFT_FSCK_FAILED', `store damaged: ${report.missing.length} missing, ${report.corrupt.length} corrupt`)
  }
}
