/**
 * Reconciling two head commits: up to date, fast-forward, or a merge commit.
 * This is the one call sync needs after fetching a peer's head; like
 * mergeTrees it is symmetric, so both peers end on the same commit.
 */
import type { CID } from 'multiformats/cid'
import type { Block } from '../object/index.js'
import { type ObjectSink, type ObjectSource, loadCommit } from '../tree/source.js'
import { mergeBases, sameCid } from './ancestry.js'
import { type Conflict, mergeCommit, mergeTrees } from './merge.js'

/** What reconciling `ours` with `theirs` produced. */
export type HeadMerge =
  /** `theirs` is already in our history (or equal): keep `ours`. */
  | { readonly kind: 'up-to-date'; readonly head: CID }
  /** `ours` is in their history: move to `theirs`, nothing new is made. */
  | { readonly kind: 'fast-forward'; readonly head: CID }
  /** A new merge commit `head` (its block and its tree's new nodes went to the sink). */
  | { readonly kind: 'merged'; readonly head: CID; readonly commit: Block; readonly conflicts: readonly Conflict[]; readonly editsKept: readonly string[] }

/**
 * Reconciles two heads. When neither contains the other, merges their trees
 * against the merge base (see mergeBase: one base, the smallest CID, even
 * in a criss-cross history), labels conflict copies with each head's
 * author, and puts the deterministic merge commit (see mergeCommit) into
 * `sink` after the tree nodes. Throws MissingObjectError when a commit or
 * directory it needs is not in `src`.
 */
export async function mergeHeads(src: ObjectSource, sink: ObjectSink, ours: CID, theirs: CID): Promise<HeadMerge> {
  if (sameCid(ours, theirs)) return { kind: 'up-to-date', head: ours }
  const bases = await mergeBases(src, ours, theirs)
  // theirs is an ancestor of ours exactly when it is the only best common ancestor.
  if (bases.length === 1 && sameCid(bases[0]!, theirs)) return { kind: 'up-to-date', head: ours }
  if (bases.length === 1 && sameCid(bases[0]!, ours)) return { kind: 'fast-forward', head: theirs }
  const [oc, tc] = await Promise.all([loadCommit(src, ours), loadCommit(src, theirs)])
  const baseTree = bases[0] === undefined ? undefined : (await loadCommit(src, bases[0])).tree
  const { tree, conflicts, editsKept } = await mergeTrees(src, sink, baseTree, oc.tree, tc.tree, { oursLabel: oc.author, theirsLabel: tc.author })
  const commit = mergeCommit(tree, { cid: ours, commit: oc }, { cid: theirs, commit: tc })
  await sink.put(commit)
  return { kind: 'merged', head: commit.cid, commit, conflicts, editsKept }
}
