import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { compareBytes, decodeCommit, encodeNode } from '../../src/object/index.js'
import { generationAfter } from '../../src/history/ancestry.js'
import { HistoryIndex } from '../../src/history/history-index.js'
import type { ObjectSource } from '../../src/tree/source.js'

/** An in-memory object source that counts loads. */
class Mem implements ObjectSource {
  readonly objects = new Map<string, Uint8Array>()
  loads = 0
  async get(cid: CID): Promise<Uint8Array | undefined> {
    this.loads++
    return this.objects.get(cid.toString())
  }
}

const EMPTY_TREE = encodeNode({ type: 'dir', entries: [] }).cid

function commit(mem: Mem, message: string, parents: CID[] = []): CID {
  const sorted = [...parents].sort((a, b) => compareBytes(a.bytes, b.bytes))
  const block = encodeNode({ type: 'commit', tree: EMPTY_TREE, parents: sorted, generation: generationAfter(sorted.map((p) => decodeCommit(mem.objects.get(p.toString())!))), author: 'peer', time: 1000, message })
  mem.objects.set(block.cid.toString(), block.bytes)
  return block.cid
}

describe('history/HistoryIndex (issue 8 item 11: head storms; issue 10: long histories)', () => {
  it('walks only as deep as asked, then answers a storm of old heads with no load at all', async () => {
    const mem = new Mem()
    const chain = [commit(mem, 'c0')]
    for (let i = 1; i < 200; i++) chain.push(commit(mem, `c${i}`, [chain[i - 1]!]))
    const head = chain[199]!
    const index = new HistoryIndex(mem)
    // A recent commit costs the commits above it, not the whole history.
    assert.equal(await index.contains(head, chain[195]!), true)
    assert.ok(mem.loads <= 10, `${mem.loads} loads for a commit 4 below the head`)
    assert.equal(await index.contains(head, chain[0]!), true)
    assert.ok(mem.loads <= 210, `${mem.loads} loads`)
    const walked = mem.loads
    // A storm: 9,000 announcements of old heads cost no load at all.
    for (let i = 0; i < 9_000; i++) assert.equal(await index.contains(head, chain[i % 200]!), true)
    assert.equal(mem.loads, walked)
    // A commit elsewhere is not ours; one that is not stored costs one lookup.
    const stranger = commit(mem, 'stranger')
    assert.equal(await index.contains(head, stranger), false)
    assert.equal(await index.contains(head, EMPTY_TREE), false, 'not stored')
    mem.objects.set(EMPTY_TREE.toString(), encodeNode({ type: 'dir', entries: [] }).bytes)
    assert.equal(await index.contains(head, EMPTY_TREE), false, 'not a commit')
    // A merge of our head with a side branch of two commits: only the new commits are read.
    const s1 = commit(mem, 's1', [chain[50]!])
    const s2 = commit(mem, 's2', [s1])
    const merge = commit(mem, 'merge', [head, s2])
    mem.loads = 0
    assert.equal(await index.contains(merge, s1), true)
    assert.ok(mem.loads <= 12, `${mem.loads} loads`)
    assert.equal(index.size, 203)
  })

  it('answers a new head on a long history by reading only the commits above what is asked', async () => {
    const mem = new Mem()
    const chain = [commit(mem, 'c0')]
    for (let i = 1; i < 5000; i++) chain.push(commit(mem, `c${i}`, [chain[i - 1]!]))
    const index = new HistoryIndex(mem)
    assert.equal(await index.contains(chain[4999]!, chain[4990]!), true)
    // A head we do not have yet, as a peer announces it, costs one lookup.
    const announced = encodeNode({ type: 'commit', tree: EMPTY_TREE, parents: [chain[4999]!], generation: 5001, author: 'peer', time: 2000, message: 'theirs' }).cid
    assert.equal(await index.contains(chain[4999]!, announced), false)
    const newer = commit(mem, 'newer', [chain[4999]!])
    assert.equal(await index.contains(newer, newer), true)
    assert.ok(mem.loads < 50, `${mem.loads} loads in a history of 5,000`)
  })

  it('starts again when the head moves back, so a commit after it no longer counts as ours', async () => {
    const mem = new Mem()
    const a = commit(mem, 'a')
    const b = commit(mem, 'b', [a])
    const c = commit(mem, 'c', [b])
    const index = new HistoryIndex(mem)
    assert.equal(await index.contains(c, c), true)
    assert.equal(await index.contains(b, c), false, 'after a checkout of b, c is not in its history')
    assert.equal(await index.contains(b, a), true)
    assert.equal(index.size, 2)
    // And forward again to a branch that does not contain c.
    const d = commit(mem, 'd', [b])
    assert.equal(await index.contains(d, c), false)
    assert.equal(await index.contains(d, d), true)
  })

  it('answers right after a read that failed halfway through a walk', async () => {
    const mem = new Mem()
    const chain = [commit(mem, 'c0')]
    for (let i = 1; i < 10; i++) chain.push(commit(mem, `c${i}`, [chain[i - 1]!]))
    let failOn: string | undefined = chain[5]!.toString()
    const flaky: ObjectSource = {
      async get(cid) {
        if (cid.toString() === failOn) {
          failOn = undefined
          throw new Error('disk hiccup')
        }
        return mem.get(cid)
      }
    }
    const index = new HistoryIndex(flaky)
    await assert.rejects(index.contains(chain[9]!, chain[1]!), /disk hiccup/)
    assert.equal(await index.contains(chain[9]!, chain[1]!), true)
    assert.equal(await index.contains(chain[9]!, chain[5]!), true)
  })

  it('gives concurrent callers the same, whole answer', async () => {
    const mem = new Mem()
    const chain = [commit(mem, 'c0')]
    for (let i = 1; i < 50; i++) chain.push(commit(mem, `c${i}`, [chain[i - 1]!]))
    const index = new HistoryIndex(mem)
    const answers = await Promise.all(chain.map((c, i) => index.contains(chain[i % 2 === 0 ? 49 : 48]!, c)))
    // Whichever head each call saw last, its answer matches that head's history.
    answers.forEach((yes, i) => assert.equal(yes, i % 2 === 0 ? true : i <= 48, `c${i}`))
  })
})
