/**
 * Which commits one head's history holds, kept current as the head moves, so
 * "is this commit already ours?" costs a set lookup when asked again. A peer
 * may announce old heads thousands of times a second; answering each with a
 * walk of history would let it burn our CPU. The set is filled lazily, from
 * the head down, only as deep as questions have reached: generation numbers
 * say when to stop, so a history of 100,000 commits costs nothing until
 * someone asks about an old one.
 */
import type { CID } from 'multiformats/cid'
import { type Commit, DAG_CBOR, decodeNode } from '../object/index.js'
import { type ObjectSource, loadCommit } from '../tree/source.js'
import { isAncestor } from './ancestry.js'
import { Heap } from './heap.js'

interface Pending {
  readonly commit: Commit
}

/** Which commits `head` reaches, found lazily and kept when the head moves forward. */
export class HistoryIndex {
  private head: CID | undefined
  /** Commits known to be in head's history: the walked ones and the frontier. */
  private readonly known = new Set<string>()
  /** Known commits whose parents are not walked yet, highest generation first. */
  private pending = new Heap<Pending>((x, y) => x.commit.generation > y.commit.generation)
  /** Calls run one at a time, so none sees a half-moved index. */
  private moving: Promise<void> = Promise.resolve()

  constructor(private readonly src: ObjectSource) {}

  /**
   * True when `cid` is `head` or one of its ancestors. Costs O(1) for a
   * commit asked about before, and otherwise the commits between `head` and
   * `cid`'s generation that no earlier question walked. Moving to a head
   * that descends from the previous one keeps what is known; moving
   * elsewhere (a checkout of an older commit) starts again. Throws
   * MissingObjectError when a commit on the way is not in the source.
   */
  contains(head: CID, cid: CID): Promise<boolean> {
    // Queued behind any call in progress: an index being moved to one head
    // must not answer for another.
    const answer = this.moving.then(async () => {
      try {
        await this.moveTo(head)
        return await this.find(cid)
      } catch (err) {
        // A read failed halfway: what is known may lack some ancestors'
        // parents, so start again next time rather than answer from it.
        this.reset()
        throw err
      }
    })
    this.moving = answer.then(() => {}, () => {})
    return answer
  }

  /** How many commits the index holds. */
  get size(): number {
    return this.known.size
  }

  private async moveTo(head: CID): Promise<void> {
    if (this.head?.equals(head)) return
    const forward = this.head !== undefined && (await isAncestor(this.src, this.head, head))
    if (!forward) this.reset()
    this.head = head
    await this.discover(head)
  }

  private reset(): void {
    this.head = undefined
    this.known.clear()
    this.pending = new Heap<Pending>((x, y) => x.commit.generation > y.commit.generation)
  }

  private async find(cid: CID): Promise<boolean> {
    const key = cid.toString()
    if (this.known.has(key)) return true
    // Not stored, or not a commit: not in any history of ours.
    if (cid.code !== DAG_CBOR) return false
    const bytes = await this.src.get(cid)
    const node = bytes === undefined ? undefined : decodeNode(bytes)
    if (node?.type !== 'commit') return false
    const floor = node.generation
    // Every commit above `floor` that head reaches is found by walking the
    // frontier down to it: a commit's children all have higher generations.
    for (let top = this.pending.peek(); top !== undefined && top.commit.generation > floor; top = this.pending.peek()) {
      this.pending.pop()
      for (const parent of top.commit.parents) await this.discover(parent)
      if (this.known.has(key)) return true
    }
    return this.known.has(key)
  }

  private async discover(cid: CID): Promise<void> {
    const key = cid.toString()
    if (this.known.has(key)) return
    this.known.add(key)
    this.pending.push({ commit: await loadCommit(this.src, cid) })
  }
}
