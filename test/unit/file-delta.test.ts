import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { RAW, cidOf } from '../../src/object/index.js'
import { FileLayout } from '../../src/object/file-layout.js'
import type { Block } from '../../src/object/index.js'
import { NEW_RUN_LEAVES, OLD_RUN_BYTES, type Run, fileRuns, indexChunks } from '../../src/tree/file-delta.js'
import type { ObjectSource } from '../../src/tree/source.js'

/** Chunk `name` of `size` bytes: its content is the name, repeated. */
function chunk(name: string, size = 100): Block {
  const bytes = Buffer.alloc(size, name)
  return { cid: cidOf(RAW, bytes), bytes }
}

/** A file made of `chunks`, laid out as LEFT lays out files; its blocks go into `blocks`. */
function fileOf(chunks: readonly Block[], blocks: Map<string, Uint8Array>): { cid: CID; size: number } {
  const layout = new FileLayout()
  for (const c of chunks) {
    blocks.set(c.cid.toString(), c.bytes)
    for (const node of layout.add({ cid: c.cid, size: c.bytes.length })) blocks.set(node.cid.toString(), node.bytes)
  }
  const { blocks: rest, root } = layout.finish()
  for (const node of rest) blocks.set(node.cid.toString(), node.bytes)
  return root
}

/** The runs of `after` against `before`, each as [kind, at, from or chunk count, size]. */
async function runs(before: readonly Block[], after: readonly Block[]): Promise<Array<[string, number, number, number]>> {
  const blocks = new Map<string, Uint8Array>()
  const old = fileOf(before, blocks)
  const now = fileOf(after, blocks)
  const src: ObjectSource = { get: async (cid) => blocks.get(cid.toString()) }
  const index = await indexChunks(src, old.cid, old.size, 1 << 20)
  assert.ok(index !== undefined)
  const out: Array<[string, number, number, number]> = []
  let at = 0
  for await (const run of fileRuns(src, now.cid, now.size, index)) {
    assert.equal(run.at, at, 'runs follow each other with no gap')
    at += sizeOf(run)
    out.push(run.kind === 'old' ? ['old', run.at, run.from, run.size] : ['new', run.at, run.leaves.length, sizeOf(run)])
  }
  assert.equal(at, now.size)
  return out
}

function sizeOf(run: Run): number {
  return run.kind === 'old' ? run.size : run.leaves.reduce((n, l) => n + l.size, 0)
}

const many = (prefix: string, n: number): Block[] => Array.from({ length: n }, (_, i) => chunk(`${prefix}${i}`))

describe('tree/file-delta: what a new version of a file can take from its old one', () => {
  const base = many('a', 300)

  it('keeps the chunks around an overwrite in place: one new run between two old ones', async () => {
    const after = [...base.slice(0, 100), chunk('x'), chunk('y'), ...base.slice(102)]
    assert.deepEqual(await runs(base, after), [
      ['old', 0, 0, 10_000],
      ['new', 10_000, 2, 200],
      ['old', 10_200, 10_200, 19_800]
    ])
  })

  it('shifts everything after an insert at the start, as one run', async () => {
    const after = [chunk('new', 37), ...base]
    assert.deepEqual(await runs(base, after), [['new', 0, 1, 37], ['old', 37, 0, 30_000]])
  })

  it('follows moved ranges and a deleted middle', async () => {
    const after = [...base.slice(200), ...base.slice(0, 50)]
    assert.deepEqual(await runs(base, after), [['old', 0, 20_000, 10_000], ['old', 10_000, 0, 5_000]])
  })

  it('keeps repeats of one chunk in one run for as long as the old version repeats it too', async () => {
    const zero = chunk('0')
    const before = Array.from({ length: 50 }, () => zero)
    assert.deepEqual(await runs(before, [...before, zero]), [['old', 0, 0, 5_000], ['old', 5_000, 0, 100]])
  })

  it('finds a repeated chunk where it stayed, not only where it first appears', async () => {
    const [z, a, b, c] = [chunk('z'), chunk('a'), chunk('b'), chunk('c')]
    assert.deepEqual(await runs([z, a, z], [b, c, z]), [['new', 0, 2, 200], ['old', 200, 200, 100]])
  })

  it('cuts shared chunks into runs of a bounded size', async () => {
    const big = Array.from({ length: 40 }, (_, i) => chunk(`big${i}`, 200 * 1024))
    const cut = await runs(big, big)
    assert.deepEqual(cut.map((r) => r[3]), [20 * 200 * 1024, 20 * 200 * 1024])
    assert.ok(OLD_RUN_BYTES >= 20 * 200 * 1024 && OLD_RUN_BYTES < 21 * 200 * 1024)
  })

  it('cuts new chunks into runs of a bounded count', async () => {
    const fresh = many('n', NEW_RUN_LEAVES * 2 + 1)
    assert.deepEqual(await runs(base, fresh), [
      ['new', 0, NEW_RUN_LEAVES, NEW_RUN_LEAVES * 100],
      ['new', NEW_RUN_LEAVES * 100, NEW_RUN_LEAVES, NEW_RUN_LEAVES * 100],
      ['new', NEW_RUN_LEAVES * 200, 1, 100]
    ])
  })

  it('does not index an old version with more chunks than the limit', async () => {
    const blocks = new Map<string, Uint8Array>()
    const old = fileOf(base, blocks)
    const src: ObjectSource = { get: async (cid) => blocks.get(cid.toString()) }
    assert.equal(await indexChunks(src, old.cid, old.size, 299), undefined)
    assert.equal((await indexChunks(src, old.cid, old.size, 300))?.count, 300)
  })
})
