import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { CID } from 'multiformats/cid'
import * as dagCbor from '@ipld/dag-cbor'
import { DAG_CBOR, FLAT_DIR_MAX, RAW, bucketAt, cidOf, decodeNode, encodeNode, layoutDir, nameHash } from '../../src/object/index.js'
import type { DirEntry } from '../../src/object/index.js'
import { dirDelta, editDir, findEntry, readDir, sortByName } from '../../src/tree/directory.js'
import { type Change, diffTrees } from '../../src/tree/diff.js'
import { mergeTrees } from '../../src/history/merge.js'
import { Mem } from '../helpers/mem.js'


const entry = (name: string, content = name): DirEntry => ({ name, kind: 'file', cid: cidOf(RAW, Buffer.from(content)), size: Buffer.byteLength(content), mtime: 1000, exec: false })
const names = (n: number, prefix = 'file-'): DirEntry[] => Array.from({ length: n }, (_, i) => entry(`${prefix}${i}.txt`))
const nameList = (entries: readonly DirEntry[]): string[] => entries.map((e) => e.name)

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

describe('tree/directory: sharded directories (issue 12)', () => {
  it(`keeps a directory of up to ${FLAT_DIR_MAX} entries as one plain node, byte for byte as before`, () => {
    const entries = sortByName(names(FLAT_DIR_MAX))
    const { root, blocks } = layoutDir(entries)
    assert.equal(blocks.length, 1)
    assert.equal(root.cid.toString(), encodeNode({ type: 'dir', entries }).cid.toString())
  })

  it('splits a bigger directory into shards that read back as every entry, sorted, and find each name', async () => {
    const mem = new Mem()
    const entries = names(5000)
    const root = mem.dir(entries)
    const top = decodeNode(mem.objects.get(root.toString())!)
    assert.ok(top.type === 'shard' && top.depth === 0 && top.buckets.reduce((n, b) => n + b.count, 0) === 5000)
    const back = await readDir(mem, root)
    assert.deepEqual(nameList(back), nameList(sortByName(entries)))
    for (const block of mem.objects.values()) {
      const node = decodeNode(block)
      if (node.type === 'dir') assert.ok(node.entries.length <= FLAT_DIR_MAX)
    }
    assert.equal((await findEntry(mem, root, 'file-4321.txt'))?.cid.toString(), entry('file-4321.txt').cid.toString())
    assert.equal(await findEntry(mem, root, 'file-5000.txt'), undefined)
  })

  it('lays out a set of entries the same way whatever edits led to it (canonical)', async () => {
    await fc.assert(fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 0, max: 700 }), { minLength: 0, maxLength: 600 }),
      fc.uniqueArray(fc.integer({ min: 0, max: 700 }), { maxLength: 400 }),
      async (start, changes) => {
        const mem = new Mem()
        const before = start.map((i) => entry(`n${i}`))
        const root = mem.dir(before)
        // Toggle each changed name: present ones go, absent ones come.
        const present = new Set(start)
        const edits = new Map(changes.map((i) => [`n${i}`, present.has(i) ? undefined : entry(`n${i}`, 'new')]))
        const edited = await editDir(mem, mem, root, edits)
        const expected = [...before.filter((e) => !edits.has(e.name)), ...[...edits.values()].filter((e) => e !== undefined)]
        assert.equal(edited.count, expected.length)
        assert.equal(edited.cid.toString(), layoutDir(sortByName(expected)).root.cid.toString())
      }
    ), { numRuns: 40 })
  })

  it('goes back to one plain node when edits leave few entries', async () => {
    const mem = new Mem()
    const entries = names(FLAT_DIR_MAX + 40)
    const root = mem.dir(entries)
    const edits = new Map(entries.slice(0, 41).map((e) => [e.name, undefined]))
    const edited = await editDir(mem, mem, root, edits)
    const node = decodeNode(mem.objects.get(edited.cid.toString())!)
    assert.ok(node.type === 'dir' && node.entries.length === FLAT_DIR_MAX - 1)
  })

  it('changes one file in 20,000 with a few small nodes, and diffs it by reading only those', async () => {
    const mem = new Mem()
    const entries = names(20_000)
    const a = mem.dir(entries)
    const before = mem.objects.size
    const b = (await editDir(mem, mem, a, new Map([['file-777.txt', entry('file-777.txt', 'edited')]]))).cid
    const written = mem.objects.size - before
    assert.ok(written >= 2 && written <= 5, `${written} new nodes`)
    mem.loads = 0
    const changes: Change[] = await collect(diffTrees(mem, a, b))
    assert.deepEqual(changes.map((c) => [c.path, c.kind]), [['file-777.txt', 'modified']])
    assert.ok(mem.loads <= 2 * written, `${mem.loads} reads for one change`)
  })

  it('merges edits in different buckets by reading only the buckets that differ', async () => {
    const mem = new Mem()
    const entries = names(20_000)
    const base = mem.dir(entries)
    const ours = (await editDir(mem, mem, base, new Map([['file-1.txt', entry('file-1.txt', 'ours')], ['added-by-us', entry('added-by-us')]]))).cid
    const theirs = (await editDir(mem, mem, base, new Map([['file-2.txt', undefined]]))).cid
    mem.loads = 0
    const merged = await mergeTrees(mem, mem, base, ours, theirs, { oursLabel: 'a', theirsLabel: 'b' })
    assert.ok(mem.loads < 40, `${mem.loads} reads`)
    const expected = [...entries.filter((e) => e.name !== 'file-1.txt' && e.name !== 'file-2.txt'), entry('file-1.txt', 'ours'), entry('added-by-us')]
    assert.equal(merged.tree.toString(), layoutDir(sortByName(expected)).root.cid.toString())
    const swapped = await mergeTrees(mem, mem, base, theirs, ours, { oursLabel: 'b', theirsLabel: 'a' })
    assert.equal(swapped.tree.toString(), merged.tree.toString())
  })

  it('names a conflict copy past names that only the untouched buckets hold', async () => {
    const mem = new Mem()
    const base = mem.dir(names(1000))
    const ours = (await editDir(mem, mem, base, new Map([['doc', { ...entry('doc', 'ours'), mtime: 2000 }]]))).cid
    const theirs = (await editDir(mem, mem, base, new Map([['doc', { ...entry('doc', 'theirs'), mtime: 1000 }]]))).cid
    const merged = await mergeTrees(mem, mem, base, ours, theirs, { oursLabel: 'a', theirsLabel: 'b' })
    assert.equal(merged.conflicts.length, 1)
    const all = await readDir(mem, merged.tree)
    assert.equal(all.length, 1002)
    assert.ok(all.some((e) => e.name === merged.conflicts[0]!.copyPath))
  })

  it('diffs and merges a plain directory against one of 200,000 entries (more than a call takes arguments)', async () => {
    const mem = new Mem()
    const small = mem.dir(names(10))
    const huge = mem.dir(names(200_000))
    const changes: Change[] = await collect(diffTrees(mem, small, huge))
    assert.equal(changes.length, 200_000 - 10)
    const edited = (await editDir(mem, mem, small, new Map([['file-1.txt', entry('file-1.txt', 'edited')]]))).cid
    const merged = await mergeTrees(mem, mem, small, huge, edited, { oursLabel: 'a', theirsLabel: 'b' })
    assert.equal((await findEntry(mem, merged.tree, 'file-1.txt'))?.cid.toString(), entry('file-1.txt', 'edited').cid.toString())
    assert.equal((await readDir(mem, merged.tree)).length, 200_000)
  })

  it('dirDelta leaves out the buckets two sides share, and reads plain nodes whole', async () => {
    const mem = new Mem()
    const small = mem.dir(names(10))
    const [x, y] = await dirDelta(mem, [small, mem.dir(names(11))])
    assert.deepEqual([x!.length, y!.length], [10, 11])
    const big = mem.dir(names(3000))
    const bigger = (await editDir(mem, mem, big, new Map([['zzz', entry('zzz')]]))).cid
    const [l, r] = await dirDelta(mem, [big, bigger])
    assert.ok(r!.some((e) => e.name === 'zzz'))
    assert.equal(r!.length, l!.length + 1)
    assert.ok(l!.length < FLAT_DIR_MAX)
  })
})

describe('tree/directory: shards from a hostile peer are refused (issue 12)', () => {
  /** Stores a hand-made node without the layout's checks. */
  function raw(mem: Mem, data: unknown): CID {
    const bytes = dagCbor.encode(data)
    const cid = cidOf(DAG_CBOR, bytes)
    mem.objects.set(cid.toString(), bytes)
    return cid
  }
  const plain = (e: DirEntry) => ({ name: e.name, kind: e.kind, cid: e.cid, size: e.size, mtime: e.mtime, exec: e.exec })
  const invalid = (err: { code?: string }) => err.code === 'LEFT_INVALID_OBJECT'

  it('refuses a plain node over the limit and a shard that would fit one node', () => {
    assert.throws(() => decodeNode(dagCbor.encode({ type: 'dir', entries: sortByName(names(FLAT_DIR_MAX + 1)).map(plain) })), invalid)
    const child = encodeNode({ type: 'dir', entries: [] }).cid
    assert.throws(() => decodeNode(dagCbor.encode({ type: 'shard', depth: 0, buckets: [[0, 10, child]] })), invalid)
    assert.throws(() => decodeNode(dagCbor.encode({ type: 'shard', depth: 0, buckets: [[3, 200, child], [1, 200, child]] })), invalid)
    assert.throws(() => decodeNode(dagCbor.encode({ type: 'shard', depth: 0, buckets: [[16, 300, child]] })), invalid)
    assert.throws(() => decodeNode(dagCbor.encode({ type: 'shard', depth: 64, buckets: [[0, 300, child]] })), invalid)
  })

  it('refuses an entry hidden in the wrong bucket, so a name cannot appear twice', async () => {
    const mem = new Mem()
    const entries = sortByName(names(FLAT_DIR_MAX + 1))
    const byBucket = new Map<number, DirEntry[]>()
    for (const e of entries) {
      const b = bucketAt(nameHash(e.name), 0)
      byBucket.set(b, [...(byBucket.get(b) ?? []), e])
    }
    const [first, second] = [...byBucket.keys()].sort((p, q) => p - q) as [number, number]
    // A copy of one of the first bucket's names, put in the second bucket.
    const intruder = { ...byBucket.get(first)![0]!, cid: cidOf(RAW, Buffer.from('evil')) }
    const buckets = [...byBucket.keys()].sort((p, q) => p - q).map((index) => {
      const list = index === second ? sortByName([...byBucket.get(index)!, intruder]) : byBucket.get(index)!
      return [index, list.length, raw(mem, { type: 'dir', entries: list.map(plain) })]
    })
    const root = raw(mem, { type: 'shard', depth: 0, buckets })
    await assert.rejects(readDir(mem, root), invalid)
    await assert.rejects(collect(diffTrees(mem, undefined, root)), invalid)
  })

  it('refuses a bucket whose count is not what it holds, and a shard at the wrong depth', async () => {
    const mem = new Mem()
    const root = mem.dir(names(2000))
    const top = decodeNode(mem.objects.get(root.toString())!)
    assert.ok(top.type === 'shard')
    const lying = raw(mem, { type: 'shard', depth: 0, buckets: top.buckets.map((b, i) => [b.index, b.count + (i === 0 ? 1 : 0), b.cid]) })
    await assert.rejects(readDir(mem, lying), invalid)
    const deeper = raw(mem, { type: 'shard', depth: 1, buckets: top.buckets.map((b) => [b.index, b.count, b.cid]) })
    await assert.rejects(readDir(mem, deeper), invalid)
  })
})
