/**
 * Comparing two snapshots. A diff walks both Merkle trees side by side and
 * never opens a subtree whose CID is the same on both sides, so its cost
 * follows the size of the change, not the size of the folder.
 */
import type { CID } from 'multiformats/cid'
import { childPath, compareNames } from '../object/index.js'
import type { DirEntry } from '../object/index.js'
import { dirDelta, dirDeltaGroups } from './directory.js'
import type { ObjectSource } from './source.js'

/**
 * One path that differs between two snapshots.
 *
 * - `added`: only `after` is set. `deleted`: only `before` is set.
 * - `modified`: both are set and differ in kind, cid, exec or mtime. A kind
 *   change (a directory replaced by a file or the reverse) is one `modified`
 *   change at the path itself, followed by `deleted` changes for every path
 *   below the old directory or `added` changes for every path below the new
 *   one; so there is exactly one change per path.
 * - Directories appear only when they are added or deleted (or change kind):
 *   empty directories are first-class, so an applier must mkdir/rmdir them.
 *   A directory whose contents changed is not itself reported.
 */
export interface Change {
  /** Share-relative posix path (`a/b/c`), prefixed by the diff's `prefix`. */
  readonly path: string
  readonly kind: 'added' | 'deleted' | 'modified'
  readonly before?: DirEntry
  readonly after?: DirEntry
}

/**
 * Yields every change from tree `a` to tree `b` (either may be undefined,
 * meaning an empty tree), in pre-order: a path comes before the paths below
 * it, and siblings come in canonical name order (UTF-8 bytes). Subtrees with
 * equal CIDs are skipped without being loaded. `prefix` is prepended to
 * every path, so a subtree can be diffed in place (`prefix` = its path).
 * With `byBucket`, the siblings of a sharded directory come a shard bucket
 * at a time instead (names in order within each), so the walk holds one
 * bucket of a directory of 200,000 entries, not all of them: for callers
 * that show no order, such as a sync's fetch and apply.
 * Throws MissingObjectError when a directory it must open is not in `src`.
 */
export async function* diffTrees(src: ObjectSource, a: CID | undefined, b: CID | undefined, prefix = '', byBucket = false): AsyncGenerator<Change> {
  // An explicit stack of open directory pairs, not recursion: a tree
  // thousands of levels deep (a peer can send one) must not overflow the
  // call stack. Memory follows the entries of the directories on one path
  // (with byBucket, a bucket of each).
  const stack: Frame[] = []
  const open = async (x: CID | undefined, y: CID | undefined, path: string): Promise<void> => {
    if (x !== undefined && y !== undefined && x.equals(y)) return
    if (byBucket) {
      stack.push({ prefix: path, left: [], right: [], i: 0, j: 0, groups: dirDeltaGroups(src, [x, y]) })
      return
    }
    // Shard buckets equal on both sides hold the same entries: left out of both.
    const [left, right] = (await dirDelta(src, [x, y])) as [DirEntry[], DirEntry[]]
    stack.push({ prefix: path, left, right, i: 0, j: 0 })
  }
  await open(a, b, prefix)
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!
    const l = f.left[f.i]
    const r = f.right[f.j]
    if (l === undefined && r === undefined) {
      const next = await f.groups?.next()
      if (next !== undefined && next.done !== true) {
        ;[f.left, f.right] = next.value as [readonly DirEntry[], readonly DirEntry[]]
        f.i = 0
        f.j = 0
      } else stack.pop()
      continue
    }
    // A merge join over two name-sorted lists.
    const order = l === undefined ? 1 : r === undefined ? -1 : compareNames(l.name, r.name)
    const path = childPath(f.prefix, (order > 0 ? r : l)!.name)
    /** Subtrees below this path to walk next, in order. */
    const below: Array<[CID | undefined, CID | undefined]> = []
    if (order < 0) {
      f.i++
      yield { path, kind: 'deleted', before: l! }
      if (l!.kind === 'dir') below.push([l!.cid, undefined])
    } else if (order > 0) {
      f.j++
      yield { path, kind: 'added', after: r! }
      if (r!.kind === 'dir') below.push([undefined, r!.cid])
    } else {
      f.i++
      f.j++
      if (l!.kind === 'dir' && r!.kind === 'dir') below.push([l!.cid, r!.cid])
      else if (!sameEntry(l!, r!)) {
        yield { path, kind: 'modified', before: l!, after: r! }
        if (l!.kind === 'dir') below.push([l!.cid, undefined])
        if (r!.kind === 'dir') below.push([undefined, r!.cid])
      }
    }
    // Pushed last first, so the first is walked first.
    for (const [x, y] of below.reverse()) await open(x, y, path)
  }
}

/** One directory pair being compared: both entry lists and where the walk stands in each. */
interface Frame {
  readonly prefix: string
  left: readonly DirEntry[]
  right: readonly DirEntry[]
  i: number
  j: number
  /** With byBucket: the groups of names still to compare, after `left` and `right`. */
  readonly groups?: AsyncGenerator<Array<readonly DirEntry[]>>
}

/** Counts of changed files and symlinks; directories are not counted. */
export interface DiffSummary {
  readonly added: number
  readonly modified: number
  readonly deleted: number
}

/**
 * Counts the non-directory entries among `changes`. A kind change counts by
 * its non-directory side: dir → file is one added file, file → dir one
 * deleted file, file → link one modified entry.
 */
export function summarize(changes: Iterable<Change>): DiffSummary {
  const counts = { added: 0, modified: 0, deleted: 0 }
  for (const c of changes) countChange(counts, c)
  return counts
}

/** Adds one change to `counts`, as `summarize` counts it. */
export function countChange(counts: { -readonly [K in keyof DiffSummary]: number }, c: Change): void {
  const had = c.before !== undefined && c.before.kind !== 'dir'
  const has = c.after !== undefined && c.after.kind !== 'dir'
  if (had && has) counts.modified++
  else if (has) counts.added++
  else if (had) counts.deleted++
}

/** True when two entries with the same name hold the same thing; dirs compare by CID alone. */
export function sameEntry(a: DirEntry, b: DirEntry): boolean {
  return a.kind === b.kind && a.cid.equals(b.cid) && a.exec === b.exec && a.mtime === b.mtime
}

/** Identical entries, or both absent. */
export function sameEntryOrAbsent(a: DirEntry | undefined, b: DirEntry | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && sameEntry(a, b)
}

