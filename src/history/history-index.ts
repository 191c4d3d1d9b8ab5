/**
 * The set of commits in one head's history, kept current as the head moves,
 * so "is this commit already ours?" costs a set lookup. A peer may announce
 * old heads thousands of times a second; answering each with a walk of the
 * whole history would let it burn our CPU.
 */
import type { CID } from 'multiformats/cid'
import { type ObjectSource, loadCommit } from '../tree/source.js'

/** Which commits `head` reaches, updated incrementally when the head moves forward. */
export class HistoryIndex {
  private head: string | undefined
  private readonly commits = new Set<string>()
  /** Calls run one at a time, so none sees a half-built set. */
  private moving: Promise<void> = Promise.resolve()

  constructor(private readonly src: ObjectSource) {}

  /**
   * True when `cid` is `head` or one of its ancestors. Costs O(1) once the
   * index has reached `head`; getting there from the previous head costs
   * the commits added since when `head` descends from it, and a full walk
   * otherwise (after a checkout of an older commit). Throws
   * MissingObjectError when a commit on the way is not in the source.
   */
  contains(head: CID, cid: CID): Promise<boolean> {
    // Queued behind any move in progress: a set being rebuilt for one head
    // must not answer for another.
    const answer = this.moving.then(async () => {
      await this.moveTo(head)
      return this.commits.has(cid.toString())
    })
    this.moving = answer.then(() => {}, () => {})
    return answer
  }

  /** How many commits the index holds. */
  get size(): number {
    return this.commits.size
  }

  private async moveTo(head: CID): Promise<void> {
    const target = head.toString()
    if (this.head === target) return
    // Walk back from the new head, stopping at commits already indexed:
    // their ancestors are indexed too. If the walk meets the old head, the
    // new head descends from it and the old set stays true.
    const added = await this.walk(head, this.commits)
    if (this.head !== undefined && !added.reachedKnown.has(this.head)) {
      this.commits.clear()
      for (const key of (await this.walk(head, this.commits)).visited) this.commits.add(key)
    } else {
      for (const key of added.visited) this.commits.add(key)
    }
    this.head = target
  }

  /** Breadth-first from `head` over commits not in `known`. */
  private async walk(head: CID, known: ReadonlySet<string>): Promise<{ visited: Set<string>; reachedKnown: Set<string> }> {
    const visited = new Set<string>()
    const reachedKnown = new Set<string>()
    let frontier: CID[] = [head]
    while (frontier.length > 0) {
      const next: CID[] = []
      for (const cid of frontier) {
        const key = cid.toString()
        if (known.has(key)) {
          reachedKnown.add(key)
          continue
        }
        if (visited.has(key)) continue
        visited.add(key)
        next.push(...(await loadCommit(this.src, cid)).parents)
      }
      frontier = next
    }
    return { visited, reachedKnown }
  }
}
