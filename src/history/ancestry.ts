/**
 * The shape of history: ancestry tests, merge bases and the log walk. Every
 * function reads commits through an ObjectSource and follows parent links
 * only; none of them opens a tree.
 */
import type { CID } from 'multiformats/cid'
import { compareBytes } from '../object/index.js'
import type { Commit } from '../object/index.js'
import { type ObjectSource, loadCommit } from '../tree/source.js'
import { Heap } from './heap.js'

/** A commit together with its CID, as the log yields it. */
export interface LoggedCommit {
  readonly cid: CID
  readonly commit: Commit
}

/**
 * True when `ancestor` is reachable from `descendant` by parent links. A
 * commit is its own ancestor, as in `git merge-base --is-ancestor`, so a
 * fast-forward test is `isAncestor(src, ours, theirs)`. Generation numbers
 * bound the walk: a commit no higher than `ancestor` cannot lead to it, so
 * the cost is the commits between the two, not the whole history.
 * Throws MissingObjectError when a commit on the way is not in `src`.
 */
export async function isAncestor(src: ObjectSource, ancestor: CID, descendant: CID): Promise<boolean> {
  if (sameCid(ancestor, descendant)) return true
  const floor = (await loadCommit(src, ancestor)).generation
  const seen = new Set<string>([descendant.toString()])
  const queue: CID[] = [descendant]
  for (let i = 0; i < queue.length; i++) {
    const commit = await loadCommit(src, queue[i]!)
    if (commit.generation <= floor) continue
    for (const parent of commit.parents) {
      if (sameCid(parent, ancestor)) return true
      const key = parent.toString()
      if (seen.has(key)) continue
      seen.add(key)
      queue.push(parent)
    }
  }
  return false
}

/**
 * The best common ancestor of `a` and `b`: a commit reachable from both that
 * is not an ancestor of another such commit. When several qualify (a
 * criss-cross history) the one with the smallest CID bytes is returned, so
 * the answer does not depend on argument order and every peer picks the
 * same base. Undefined when the histories share no commit.
 */
export async function mergeBase(src: ObjectSource, a: CID, b: CID): Promise<CID | undefined> {
  const best = await mergeBases(src, a, b)
  return best[0]
}

const FROM_A = 1
const FROM_B = 2
/** Below a common ancestor: cannot be a best one. */
const STALE = 4

/**
 * Every best common ancestor of `a` and `b`, sorted by CID bytes (see
 * mergeBase). Empty when the histories are unrelated.
 *
 * git's paint-down walk: commits are visited highest generation first, each
 * painted with the heads that reach it; one painted by both is a candidate,
 * and everything below it is stale. The walk stops when only stale commits
 * are left, so it reads the commits since the merge bases (and those of an
 * unrelated history), not all of history.
 */
export async function mergeBases(src: ObjectSource, a: CID, b: CID): Promise<CID[]> {
  if (sameCid(a, b)) return [a]
  const flags = new Map<string, number>()
  const queue = new Heap<LoggedCommit>(higherFirst)
  /** Loaded once: a commit is queued again each time it gains a flag. */
  const commits = new Map<string, Commit>()
  const paint = async (cid: CID, f: number): Promise<void> => {
    const key = cid.toString()
    flags.set(key, (flags.get(key) ?? 0) | f)
    let commit = commits.get(key)
    if (commit === undefined) commits.set(key, (commit = await loadCommit(src, cid)))
    queue.push({ cid, commit })
  }
  await paint(a, FROM_A)
  await paint(b, FROM_B)
  const candidates: LoggedCommit[] = []
  const found = new Set<string>()
  while (queue.some((x) => ((flags.get(x.cid.toString()) ?? 0) & STALE) === 0)) {
    const top = queue.pop()!
    const key = top.cid.toString()
    let f = flags.get(key)! & (FROM_A | FROM_B | STALE)
    if ((f & (FROM_A | FROM_B)) === (FROM_A | FROM_B)) {
      if ((f & STALE) === 0 && !found.has(key)) {
        found.add(key)
        candidates.push(top)
      }
      f |= STALE
    }
    for (const p of top.commit.parents) {
      if (((flags.get(p.toString()) ?? 0) & f) === f) continue
      await paint(p, f)
    }
  }
  // A candidate found before the stale mark reached it may still be an
  // ancestor of another (criss-cross histories): keep only the best.
  const best: CID[] = []
  for (const x of candidates) {
    let redundant = false
    for (const y of candidates) {
      if (y !== x && (await isAncestor(src, x.cid, y.cid))) {
        redundant = true
        break
      }
    }
    if (!redundant) best.push(x.cid)
  }
  return best.sort((x, y) => compareBytes(x.bytes, y.bytes))
}

/** Higher generation first; ties by smaller CID bytes, so the walk is the same on every peer. */
function higherFirst(x: LoggedCommit, y: LoggedCommit): boolean {
  if (x.commit.generation !== y.commit.generation) return x.commit.generation > y.commit.generation
  return compareBytes(x.cid.bytes, y.cid.bytes) < 0
}

/**
 * The generation a commit with these parents must have: 1 for a first
 * commit, else one more than the highest parent.
 */
export function generationAfter(parents: ReadonlyArray<{ readonly generation: number }>): number {
  return parents.reduce((g, p) => Math.max(g, p.generation), 0) + 1
}

/**
 * Yields the commits reachable from `heads`, each once, newest first: the
 * frontier is a priority queue ordered by `time` descending, ties broken by
 * smaller CID bytes first. A commit is only queued when a child is yielded,
 * so with skewed clocks a child still comes before its parents. Stops after
 * `limit` commits when given.
 */
export async function* walkLog(src: ObjectSource, heads: CID | readonly CID[], limit?: number): AsyncGenerator<LoggedCommit> {
  const max = limit ?? Infinity
  if (max <= 0) return
  const seen = new Set<string>()
  const heap = new Heap<LoggedCommit>(before)
  for (const head of Array.isArray(heads) ? heads as readonly CID[] : [heads as CID]) {
    if (seen.has(head.toString())) continue
    seen.add(head.toString())
    heap.push({ cid: head, commit: await loadCommit(src, head) })
  }
  let count = 0
  for (let top = heap.pop(); top !== undefined; top = heap.pop()) {
    yield top
    if (++count >= max) return
    for (const p of top.commit.parents) {
      const key = p.toString()
      if (seen.has(key)) continue
      seen.add(key)
      heap.push({ cid: p, commit: await loadCommit(src, p) })
    }
  }
}

/** CID equality as a plain boolean: `CID.equals` is a type guard, which would narrow the other side to never. */
export function sameCid(a: CID, b: CID): boolean {
  return a.equals(b)
}

/** True when `x` should be yielded before `y`. */
function before(x: LoggedCommit, y: LoggedCommit): boolean {
  if (x.commit.time !== y.commit.time) return x.commit.time > y.commit.time
  return compareBytes(x.cid.bytes, y.cid.bytes) < 0
}
