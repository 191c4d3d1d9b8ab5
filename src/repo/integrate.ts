/**
 * Bringing a fetched remote head into this folder: fast-forward when one
 * history contains the other, otherwise a deterministic three-way merge.
 * Local edits are committed first, so they are merged, never overwritten.
 */
import type { CID } from 'multiformats/cid'
import type { Block } from '../object/index.js'
import type { Conflict } from '../history/merge.js'
import { mergeHeads } from '../history/merge-heads.js'
import { diffTrees } from '../tree/diff.js'
import { loadCommit, overlaySource } from '../tree/source.js'
import { type Repo, collect } from './repo.js'

/** What integrating a remote head did. */
export interface IntegrateResult {
  /** Our head before and after. */
  readonly before: CID | undefined
  readonly after: CID | undefined
  readonly mode: 'none' | 'fast-forward' | 'merge'
  readonly conflicts: readonly Conflict[]
  /** Files written into the share folder. */
  readonly written: number
  /** Paths left alone because they were edited while we worked. */
  readonly skipped: readonly string[]
}

/**
 * Integrates `remote` (whose closure must already be stored) into `repo`:
 * commit local edits, fast-forward or merge, update the share folder, move
 * HEAD. Serialized with every other HEAD-moving operation.
 */
export function integrate(repo: Repo, remote: CID, onWrite?: (path: string, size: number) => void): Promise<IntegrateResult> {
  return repo.mutex.run(async () => {
    await repo.commitLocked('local changes')
    const head = await repo.head()
    const made: Block[] = []
    const merged = head === undefined
      ? { kind: 'fast-forward' as const, head: remote }
      : await mergeHeads(repo.store, { put: (b) => void made.push(b) }, head, remote)
    if (merged.kind === 'up-to-date') return { before: head, after: head, mode: 'none', conflicts: [], written: 0, skipped: [] }
    const target = merged.head
    const mode = merged.kind === 'merged' ? 'merge' : 'fast-forward'
    const conflicts = merged.kind === 'merged' ? merged.conflicts : []
    const src = overlaySource(repo.store, new Map(made.map((b) => [b.cid.toString(), b.bytes])))
    const fromTree = head === undefined ? undefined : (await loadCommit(repo.store, head)).tree
    const toTree = (await loadCommit(src, target)).tree
    // Store the merge first: the folder may only show what the store can reproduce.
    if (made.length > 0) await repo.store.putBlocks(made.slice(0, -1))
    const changes = await collect(diffTrees(src, fromTree, toTree))
    const applied = await repo.apply(changes, true, onWrite)
    const last = made[made.length - 1]
    await repo.moveHead(target, { ...(last ? { blocks: [last], commits: [target] } : {}), stat: applied.stat })
    return { before: head, after: target, mode, conflicts, written: applied.stat.size, skipped: applied.skipped }
  })
}
