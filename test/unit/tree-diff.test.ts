import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { FLAT_DIR_MAX, RAW, cidOf, encodeNode } from '../../src/object/index.js'
import { mergeTrees } from '../../src/history/merge.js'
import { type Change, diffTrees, summarize } from '../../src/tree/diff.js'
import { dirDeltaGroups, readDir } from '../../src/tree/directory.js'
import type { ObjectSource } from '../../src/tree/source.js'
import { type Spec, buildTree, file, link } from '../helpers/tree-spec.js'

/** An in-memory object source that counts which directories were loaded. */
class Mem implements ObjectSource {
  readonly objects = new Map<string, Uint8Array>()
  readonly loads: string[] = []
  async get(cid: CID): Promise<Uint8Array | undefined> {
    this.loads.push(cid.toString())
    return this.objects.get(cid.toString())
  }
}

const build = (mem: Mem, spec: Spec): CID => buildTree(mem.objects, spec)

async function diff(mem: Mem, a: CID | undefined, b: CID | undefined, prefix?: string): Promise<Change[]> {
  const out: Change[] = []
  for await (const c of diffTrees(mem, a, b, prefix)) out.push(c)
  return out
}

const brief = (changes: Change[]): string[] =>
  changes.map((c) => `${c.kind} ${c.path} ${c.before?.kind ?? '-'}>${c.after?.kind ?? '-'}`)

describe('tree/diff', () => {
  it('reports added, deleted and modified files in pre-order, parents before children', async () => {
    const mem = new Mem()
    const a = build(mem, { 'keep.txt': 'same', 'gone.txt': 'x', sub: { 'edit.txt': 'old' } })
    const b = build(mem, { 'keep.txt': 'same', 'new.txt': 'y', sub: { 'edit.txt': 'new', deep: { 'f': 'z' } }, 'sub.txt': 'w' })
    assert.deepEqual(brief(await diff(mem, a, b)), [
      'deleted gone.txt file>-',
      'added new.txt ->file',
      'added sub/deep ->dir',
      'added sub/deep/f ->file',
      'modified sub/edit.txt file>file',
      'added sub.txt ->file'
    ])
  })

  it('yields nothing and loads nothing for equal trees', async () => {
    const mem = new Mem()
    const a = build(mem, { a: { b: 'c' } })
    assert.deepEqual(await diff(mem, a, a), [])
    assert.equal(mem.loads.length, 0)
  })

  it('loads only the directories on the changed path, skipping equal subtrees', async () => {
    const mem = new Mem()
    const wide = (leaf: string): Spec => {
      const spec: Record<string, Spec | string> = {}
      for (let i = 0; i < 20; i++) spec[`d${i}`] = { inner: { 'f.bin': `content ${i}` }, 'g.bin': `g ${i}` }
      spec['d7'] = { inner: { 'f.bin': leaf }, 'g.bin': 'g 7' }
      return spec
    }
    const a = build(mem, wide('before'))
    const b = build(mem, wide('after'))
    const changes = await diff(mem, a, b)
    assert.deepEqual(changes.map((c) => c.path), ['d7/inner/f.bin'])
    // Root, d7 and d7/inner on each side: 6 loads out of 42 directories.
    assert.equal(mem.loads.length, 6)
  })

  it('reports empty directories that appear or vanish', async () => {
    const mem = new Mem()
    const a = build(mem, { old: {} })
    const b = build(mem, { fresh: {} })
    assert.deepEqual(brief(await diff(mem, a, b)), ['added fresh ->dir', 'deleted old dir>-'])
  })

  it('treats an undefined tree as empty, listing every path of the other', async () => {
    const mem = new Mem()
    const t = build(mem, { a: { b: 'x', c: {} }, l: link('a/b') })
    assert.deepEqual(brief(await diff(mem, undefined, t)), ['added a ->dir', 'added a/b ->file', 'added a/c ->dir', 'added l ->link'])
    assert.deepEqual(brief(await diff(mem, t, undefined)), ['deleted a dir>-', 'deleted a/b file>-', 'deleted a/c dir>-', 'deleted l link>-'])
  })

  it('reports a directory replaced by a file as one modified path plus deletions below it', async () => {
    const mem = new Mem()
    const a = build(mem, { x: { y: 'one', z: { w: 'two' } } })
    const b = build(mem, { x: 'now a file' })
    assert.deepEqual(brief(await diff(mem, a, b)), ['modified x dir>file', 'deleted x/y file>-', 'deleted x/z dir>-', 'deleted x/z/w file>-'])
    assert.deepEqual(brief(await diff(mem, b, a)), ['modified x file>dir', 'added x/y ->file', 'added x/z ->dir', 'added x/z/w ->file'])
  })

  it('counts a change of mtime, exec bit or kind as a modification', async () => {
    const mem = new Mem()
    const a = build(mem, { m: file('c', { mtime: 1 }), e: file('c'), k: file('target') })
    const b = build(mem, { m: file('c', { mtime: 2 }), e: file('c', { exec: true }), k: link('target') })
    assert.deepEqual(brief(await diff(mem, a, b)), ['modified e file>file', 'modified k file>link', 'modified m file>file'])
  })

  it('orders siblings by UTF-8 bytes of their names', async () => {
    const mem = new Mem()
    const b = build(mem, { 'é': 'x', 'z': 'x', 'A': 'x', 'a.b': 'x', 'a': { c: 'x' } })
    assert.deepEqual((await diff(mem, undefined, b)).map((c) => c.path), ['A', 'a', 'a/c', 'a.b', 'z', 'é'])
  })

  it('prepends the prefix to every path', async () => {
    const mem = new Mem()
    const a = build(mem, { f: 'x' })
    const b = build(mem, { f: 'y', d: {} })
    assert.deepEqual((await diff(mem, a, b, 'some/dir')).map((c) => c.path), ['some/dir/d', 'some/dir/f'])
  })

  it('throws LEFT_MISSING_OBJECT when a directory is not in the source', async () => {
    const mem = new Mem()
    const a = build(mem, { f: 'x' })
    const missing = encodeNode({ type: 'dir', entries: [] }).cid
    await assert.rejects(diff(mem, a, missing), (err: { code?: string }) => err.code === 'LEFT_MISSING_OBJECT')
  })

  it('with byBucket, walks a sharded directory a bucket at a time: the same changes, parents first, one bucket in hand', async () => {
    const mem = new Mem()
    const wide = (edited: number): Record<string, Spec | string> => {
      const spec: Record<string, Spec | string> = {}
      for (let i = 0; i < 1000; i++) spec[`f${i}`] = i === edited ? 'edited' : `v ${i}`
      for (let i = 0; i < 20; i++) spec[`d${i}`] = { inner: `in ${i}` }
      return spec
    }
    const a = build(mem, { big: wide(-1), z: 'same' })
    const b = build(mem, { big: wide(500), z: 'same' })
    const c = build(mem, { big: { ...wide(500), 'new': 'n' } })
    const byName = async (x: CID | undefined, y: CID | undefined): Promise<string[]> => brief(await diff(mem, x, y))
    const byBucket = async (x: CID | undefined, y: CID | undefined): Promise<string[]> => {
      const out: Change[] = []
      for await (const ch of diffTrees(mem, x, y, '', true)) out.push(ch)
      return brief(out)
    }
    for (const [x, y] of [[undefined, a], [a, b], [b, c], [c, undefined]] as const) {
      const walked = await byBucket(x, y)
      assert.deepEqual([...walked].sort(), [...(await byName(x, y))].sort())
      // Pre-order still: each directory's contents follow it at once.
      for (const [i, line] of walked.entries()) if (/^added big\/d\d+ /.test(line)) assert.match(walked[i + 1]!, new RegExp(`^added ${line.split(' ')[1]}/inner `))
    }
    // A plain directory that grows past one node, and shrinks back: its
    // entries are split by bucket beside the shards, never read whole.
    const grown = build(mem, { big: wide(500) })
    const small = build(mem, { big: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`f${i}`, `v ${i}`])) })
    for (const [x, y] of [[small, grown], [grown, small]] as const) {
      assert.deepEqual([...(await byBucket(x, y))].sort(), [...(await byName(x, y))].sort())
      const dirs = await Promise.all([x, y].map(async (t) => (await readDir(mem, t)).find((e) => e.name === 'big')!.cid))
      let groups = 0
      for await (const group of dirDeltaGroups(mem, dirs)) {
        groups++
        for (const side of group) assert.ok(side.length <= FLAT_DIR_MAX, `a group holds ${side.length} entries of one side`)
      }
      assert.ok(groups > 1)
    }
    // A whole first sync of the directory comes in bucket order, not name order.
    const first = (await byBucket(undefined, a)).filter((l) => l.startsWith('added big/f'))
    assert.notDeepEqual(first, [...first].sort())
    assert.equal(first.length, 1000)
  })
})

describe('tree/diff summarize', () => {
  it('counts files and links, not directories, and counts a kind change by its non-directory side', async () => {
    const mem = new Mem()
    const a = build(mem, { gone: 'x', edit: 'old', swap: { inner: 'y' }, link: link('t'), empty: {} })
    const b = build(mem, { edit: 'new', swap: 'now a file', link: link('u'), added: { one: '1', two: '2' } })
    // added: added/one, added/two, swap (a file replacing a dir); deleted: gone, swap/inner; modified: edit, link
    assert.deepEqual(summarize(await diff(mem, a, b)), { added: 3, modified: 2, deleted: 2 })
  })

  it('walks a tree 20,000 levels deep without recursion (issue 8 item 10), and so does a merge', async () => {
    const mem = new Mem()
    /** `files` at the bottom of a chain of `depth` folders named d, built bottom-up without recursion. */
    const chain = (depth: number, files: Record<string, string>): CID => {
      const entries = Object.entries(files).map(([name, text]) => {
        const bytes = Buffer.from(text)
        const cid = cidOf(RAW, bytes)
        mem.objects.set(cid.toString(), bytes)
        return { name, kind: 'file' as const, cid, size: bytes.length, mtime: 1000, exec: false }
      })
      let block = encodeNode({ type: 'dir', entries })
      mem.objects.set(block.cid.toString(), block.bytes)
      for (let i = 0; i < depth; i++) {
        block = encodeNode({ type: 'dir', entries: [{ name: 'd', kind: 'dir', cid: block.cid, size: 0, mtime: 0, exec: false }] })
        mem.objects.set(block.cid.toString(), block.bytes)
      }
      return block.cid
    }
    const depth = 20_000
    const bottom = Array.from({ length: depth }, () => 'd').join('/')
    const base = chain(depth, { f: 'base' })
    const ours = chain(depth, { f: 'base', o: 'ours' })
    const theirs = chain(depth, { f: 'base', t: 'theirs' })
    assert.equal((await diff(mem, undefined, base)).length, depth + 1)
    assert.deepEqual(brief(await diff(mem, base, ours)), [`added ${bottom}/o ->file`])
    const merged = await mergeTrees(mem, { put: (b) => void mem.objects.set(b.cid.toString(), b.bytes) }, base, ours, theirs, { oursLabel: 'a', theirsLabel: 'b' })
    assert.deepEqual(brief(await diff(mem, base, merged.tree)), [`added ${bottom}/o ->file`, `added ${bottom}/t ->file`])
  })
})
