import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { compareBytes, decodeCommit, encodeNode } from '../../src/object/index.js'
import { isAncestor, mergeBase, mergeBases, walkLog } from '../../src/history/ancestry.js'
import type { ObjectSource } from '../../src/tree/source.js'

/** An in-memory object source. */
class Mem implements ObjectSource {
  readonly objects = new Map<string, Uint8Array>()
  async get(cid: CID): Promise<Uint8Array | undefined> {
    return this.objects.get(cid.toString())
  }
}

const EMPTY_TREE = encodeNode({ type: 'dir', entries: [] }).cid

/** Every commit's generation, whichever store holds it. */
const generations = new Map<string, number>()

/** Stores a commit and returns its CID. */
function commit(mem: Mem, message: string, parents: CID[] = [], time = 1000): CID {
  const sorted = [...parents].sort((a, b) => compareBytes(a.bytes, b.bytes))
  const block = encodeNode({ type: 'commit', tree: EMPTY_TREE, parents: sorted, generation: 1 + Math.max(0, ...sorted.map((p) => generations.get(p.toString())!)), author: 'peer', time, message })
  mem.objects.set(block.cid.toString(), block.bytes)
  generations.set(block.cid.toString(), decodeCommit(block.bytes).generation)
  return block.cid
}

async function log(mem: Mem, head: CID, limit?: number): Promise<string[]> {
  const out: string[] = []
  for await (const { commit } of walkLog(mem, head, limit)) out.push(commit.message)
  return out
}

const str = (c: CID | undefined): string | undefined => c?.toString()

describe('history/ancestry isAncestor', () => {
  const mem = new Mem()
  const c1 = commit(mem, 'c1')
  const c2 = commit(mem, 'c2', [c1])
  const c3 = commit(mem, 'c3', [c2])
  const side = commit(mem, 'side', [c1])

  it('finds ancestors along a linear history', async () => {
    assert.equal(await isAncestor(mem, c1, c3), true)
    assert.equal(await isAncestor(mem, c2, c3), true)
  })

  it('counts a commit as its own ancestor', async () => {
    assert.equal(await isAncestor(mem, c2, c2), true)
  })

  it('says no for descendants and for commits on another branch', async () => {
    assert.equal(await isAncestor(mem, c3, c1), false)
    assert.equal(await isAncestor(mem, side, c3), false)
    assert.equal(await isAncestor(mem, c3, side), false)
  })

  it('throws LEFT_MISSING_OBJECT when a parent is not in the source', async () => {
    const partial = new Mem()
    const orphan = commit(partial, 'orphan', [c2])
    await assert.rejects(isAncestor(partial, c1, orphan), (err: { code?: string }) => err.code === 'LEFT_MISSING_OBJECT')
  })
})

describe('history/ancestry mergeBase', () => {
  it('is the older commit in a linear history', async () => {
    const mem = new Mem()
    const c1 = commit(mem, 'c1')
    const c2 = commit(mem, 'c2', [c1])
    const c3 = commit(mem, 'c3', [c2])
    assert.equal(str(await mergeBase(mem, c3, c2)), str(c2))
    assert.equal(str(await mergeBase(mem, c2, c3)), str(c2))
  })

  it('is the fork point of two branches, whichever is given first', async () => {
    const mem = new Mem()
    const root = commit(mem, 'root')
    const fork = commit(mem, 'fork', [root])
    const a2 = commit(mem, 'a2', [commit(mem, 'a1', [fork])])
    const b1 = commit(mem, 'b1', [fork])
    assert.equal(str(await mergeBase(mem, a2, b1)), str(fork))
    assert.equal(str(await mergeBase(mem, b1, a2)), str(fork))
  })

  it('uses the latest merge, not the original fork, after branches merged once', async () => {
    const mem = new Mem()
    const fork = commit(mem, 'fork')
    const a1 = commit(mem, 'a1', [fork])
    const b1 = commit(mem, 'b1', [fork])
    const m = commit(mem, 'merge', [a1, b1])
    const a2 = commit(mem, 'a2', [m])
    const b2 = commit(mem, 'b2', [b1])
    // b1 is common and m is not reachable from b2, so b1 is the best base.
    assert.equal(str(await mergeBase(mem, a2, b2)), str(b1))
    const b3 = commit(mem, 'b3', [m])
    assert.equal(str(await mergeBase(mem, a2, b3)), str(m))
  })

  it('keeps only the best bases in a criss-cross and picks the smallest CID symmetrically', async () => {
    const mem = new Mem()
    const root = commit(mem, 'root')
    const a1 = commit(mem, 'a1', [root])
    const b1 = commit(mem, 'b1', [root])
    const a2 = commit(mem, 'a2', [a1, b1])
    const b2 = commit(mem, 'b2', [a1, b1])
    const bases = await mergeBases(mem, a2, b2)
    const expected = [a1, b1].sort((x, y) => compareBytes(x.bytes, y.bytes))
    assert.deepEqual(bases.map(str), expected.map(str))
    assert.equal(str(await mergeBase(mem, a2, b2)), str(expected[0]))
    assert.equal(str(await mergeBase(mem, b2, a2)), str(expected[0]))
  })

  it('is undefined for unrelated histories', async () => {
    const mem = new Mem()
    const a = commit(mem, 'a', [commit(mem, 'a0')])
    const b = commit(mem, 'b', [commit(mem, 'b0')])
    assert.equal(await mergeBase(mem, a, b), undefined)
  })

  it('is the commit itself when both sides are the same', async () => {
    const mem = new Mem()
    const c = commit(mem, 'c', [commit(mem, 'p')])
    assert.equal(str(await mergeBase(mem, c, c)), str(c))
  })
})

describe('history/ancestry walkLog', () => {
  it('yields newest first and each commit once across a diamond', async () => {
    const mem = new Mem()
    const root = commit(mem, 'root', [], 100)
    const a = commit(mem, 'a', [root], 300)
    const b = commit(mem, 'b', [root], 200)
    const m = commit(mem, 'm', [a, b], 400)
    assert.deepEqual(await log(mem, m), ['m', 'a', 'b', 'root'])
  })

  it('breaks time ties by CID bytes, smallest first', async () => {
    const mem = new Mem()
    const root = commit(mem, 'root', [], 100)
    const x = commit(mem, 'x', [root], 200)
    const y = commit(mem, 'y', [root], 200)
    const m = commit(mem, 'm', [x, y], 300)
    const [first, second] = compareBytes(x.bytes, y.bytes) < 0 ? ['x', 'y'] : ['y', 'x']
    assert.deepEqual(await log(mem, m), ['m', first, second, 'root'])
  })

  it('never yields a parent before its child, even with a skewed clock', async () => {
    const mem = new Mem()
    const old = commit(mem, 'future-parent', [], 9000)
    const child = commit(mem, 'child', [old], 10)
    assert.deepEqual(await log(mem, child), ['child', 'future-parent'])
  })

  it('stops after limit commits', async () => {
    const mem = new Mem()
    let head = commit(mem, 'c0', [], 0)
    for (let i = 1; i < 10; i++) head = commit(mem, `c${i}`, [head], i)
    assert.deepEqual(await log(mem, head, 3), ['c9', 'c8', 'c7'])
    assert.deepEqual(await log(mem, head, 0), [])
    assert.equal((await log(mem, head)).length, 10)
  })
})
