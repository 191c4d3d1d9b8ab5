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

describe('history/HistoryIndex (issue 8 item 11: head storms)', () => {
  it('answers from a set once built, and extends it by only the new commits when the head moves forward', async () => {
    const mem = new Mem()
    const chain = [commit(mem, 'c0')]
    for (let i = 1; i < 200; i++) chain.push(commit(mem, `c${i}`, [chain[i - 1]!]))
    const head = chain[199]!
    const index = new HistoryIndex(mem)
    assert.equal(await index.contains(head, chain[0]!), true)
    assert.equal(mem.loads, 200, 'built once, one load per commit')
    // A storm: 9,000 announcements of old heads cost no load at all.
    for (let i = 0; i < 9_000; i++) assert.equal(await index.contains(head, chain[i % 200]!), true)
    assert.equal(mem.loads, 200)
    // A commit elsewhere is not ours, and costs nothing either.
    const stranger = commit(mem, 'stranger')
    assert.equal(await index.contains(head, stranger), false)
    assert.equal(mem.loads, 200)
    // A merge of our head with a side branch of two commits: three loads.
    const s1 = commit(mem, 's1', [chain[50]!])
    const s2 = commit(mem, 's2', [s1])
    const merge = commit(mem, 'merge', [head, s2])
    assert.equal(await index.contains(merge, s1), true)
    assert.equal(mem.loads, 203)
    assert.equal(index.size, 203)
  })

  it('rebuilds when the head moves back, so a commit after it no longer counts as ours', async () => {
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
