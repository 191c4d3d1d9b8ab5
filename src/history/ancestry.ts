/**
 * The shape of history: ancestry tests, merge bases and the log walk. Every
 * function reads commits through an ObjectSource and follows parent links
 * only; none of them opens a tree.
 */
import type { CID } from 'multiformats/cid'
import { compareBytes } from '../object/index.js'
import type { Commit } from '../object/index.js'
import { type ObjectSource, loadCommit } from '../tree/source.js'

/** A commit together with its CID, as the log yields it. */
export interface LoggedCommit {
  readonly cid: CID
  readonly commit: Commit
}

/**
 * True when `ancestor` is reachable from `descendant` by parent links. A
 * commit is its own ancestor, as in `git merge-base --is-ancestor`, so a
 * fast-forward test is `isAncestor(src, ours, theirs)`. Breadth-first with a
 * visited set: each commit is loaded at most once, memory O(commits).
 * Throws MissingObjectError when a commit on the way is not in `src`.
 */
export async function isAncestor(src: ObjectSource, ancestor: CID, descendant: CID): Promise<boolean> {
  if (sameCid(ancestor, descendant)) return true
  const seen = new Set<string>([descendant.toString()])
  let frontier: CID[] = [descendant]
  while (frontier.length > 0) {
    const next: CID[] = []
    for (const cid of frontier) {
      for (const parent of (await loadCommit(src, cid)).parents) {
        if (sameCid(parent, ancestor)) return true
        const key = parent.toString()
        if (seen.has(key)) continue
        seen.add(key)
        next.push(parent)
      }
    }
    frontier = next
  }
  return false
}

/**
 * The best common ancestor of `a` and `b`: a commit reachable from both that
 * is not an ancestor of another such commit. When several qualify (a
 * criss-cross history) the one with the smallest CID bytes is returned, so
 * the answer does not depend on argument order and every peer picks the
 * same base. Undefined when the histories share no commit.
 * Memory and loads are O(commits reachable from a or b).
 */
export async function mergeBase(src: ObjectSource, a: CID, b: CID): Promise<CID | undefined> {
  const best = await mergeBases(src, a, b)
  return best[0]
}

/**
 * Every best common ancestor of `a` and `b`, sorted by CID bytes (see
 * mergeBase). Empty when the histories are unrelated.
 */
export async function mergeBases(src: ObjectSource, a: CID, b: CID): Promise<CID[]> {
  const parents = new Map<string, readonly CID[]>()
  const fromA = await reachable(src, a, parents)
  const fromB = await reachable(src, b, parents)
  const common = [...fromA.keys()].filter((k) => fromB.has(k))
  // Common ancestors are closed under "parent of", so a common commit is
  // redundant exactly when it is the parent of another common commit.
  const redundant = new Set<string>()
  for (const key of common) for (const p of parents.get(key)!) redundant.add(p.toString())
  const best = common.filter((k) => !redundant.has(k)).map((k) => fromA.get(k)!)
  return best.sort((x, y) => compareBytes(x.bytes, y.bytes))
}

/** Every commit reachable from `head` (itself included), keyed by CID string; fills `parents`. */
async function reachable(src: ObjectSource, head: CID, parents: Map<string, readonly CID[]>): Promise<Map<string, CID>> {
  const out = new Map<string, CID>([[head.toString(), head]])
  const queue: CID[] = [head]
  for (let i = 0; i < queue.length; i++) {
    const cid = queue[i]!
    const key = cid.toString()
    let ps = parents.get(key)
    if (ps === undefined) {
      // Only the parent list is kept: messages can be large and are not needed.
      ps = (await loadCommit(src, cid)).parents
      parents.set(key, ps)
    }
    for (const p of ps) {
      const pk = p.toString()
      if (out.has(pk)) continue
      out.set(pk, p)
      queue.push(p)
    }
  }
  return out
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
  const heap = new CommitHeap()
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

/** A binary heap: the log's frontier can be wide after many merges. */
class CommitHeap {
  private readonly items: LoggedCommit[] = []

  push(item: LoggedCommit): void {
    const a = this.items
    a.push(item)
    let i = a.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(a[i]!, a[parent]!)) break
      ;[a[i], a[parent]] = [a[parent]!, a[i]!]
      i = parent
    }
  }

  pop(): LoggedCommit | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (a.length === 0 || last === undefined) return top
    a[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < a.length && before(a[l]!, a[m]!)) m = l
      if (r < a.length && before(a[r]!, a[m]!)) m = r
      if (m === i) break
      ;[a[i], a[m]] = [a[m]!, a[i]!]
      i = m
    }
    return top
  }
}
