/**
 * The log as people read it: the commits reachable from some heads, newest
 * first, each with its changes against every parent, and, given a
 * pathspec, only the commits that changed what it names. Reads commits and
 * trees through an ObjectSource; writes nothing.
 */
import type { CID } from 'multiformats/cid'
import type { Commit } from '../object/index.js'
import { type Change, diffTrees } from '../tree/diff.js'
import type { Pathspec } from '../tree/pathspec.js'
import { type ObjectSource, loadCommit } from '../tree/source.js'
import { walkLog } from './ancestry.js'

/** One commit as the log shows it. */
export interface LogEntry {
  readonly cid: CID
  readonly commit: Commit
  /**
   * Its changes against each parent, in parent order: one list for an
   * ordinary commit, one per parent for a merge, and one against an empty
   * tree for a first commit. Only the paths the pathspec names.
   */
  readonly changes: ReadonlyArray<readonly Change[]>
}

/** What `readLog` shows. */
export interface LogOptions {
  /** At most this many entries. */
  readonly limit?: number
  /**
   * Only commits that changed a path it names, as `git log -- PATH` shows
   * them: an ordinary commit that changed one, or a merge that differs there
   * from every parent (a merge that only took one side's change is left
   * out; the commit that made the change is shown).
   */
  readonly paths?: Pathspec
}

/** Yields the log of `heads` (see LogOptions). */
export async function* readLog(src: ObjectSource, heads: readonly CID[], options: LogOptions = {}): AsyncGenerator<LogEntry> {
  const limit = options.limit ?? Infinity
  const paths = options.paths?.all === false ? options.paths : undefined
  if (limit <= 0 || heads.length === 0) return
  let count = 0
  for await (const { cid, commit } of walkLog(src, heads)) {
    const changes: Change[][] = []
    for (const parent of commit.parents.length === 0 ? [undefined] : commit.parents) {
      const parentTree = parent === undefined ? undefined : (await loadCommit(src, parent)).tree
      const list: Change[] = []
      for await (const c of diffTrees(src, parentTree, commit.tree)) if (paths === undefined || paths.matches(c.path)) list.push(c)
      changes.push(list)
    }
    if (paths !== undefined && changes.some((list) => list.length === 0)) continue
    yield { cid, commit, changes }
    if (++count >= limit) return
  }
}
