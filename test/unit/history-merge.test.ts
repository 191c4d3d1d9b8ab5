import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { CID } from 'multiformats/cid'
import { RAW, cidOf, encodeNode, isValidName } from '../../src/object/index.js'
import { readDir } from '../../src/tree/directory.js'
import { Mem } from '../helpers/mem.js'
import { type TreeMerge, mergeTrees } from '../../src/history/merge.js'
import { type Leaf, type Spec, buildTree, file as specFile, link } from '../helpers/tree-spec.js'


const file = (content: string, mtime = 1000, exec = false): Leaf => specFile(content, { mtime, exec })
const build = (mem: Mem, spec: Spec): CID => buildTree(mem.objects, spec)

/** Reads a tree back as `path: description`, decoding (and so validating) every directory. */
async function show(mem: Mem, cid: CID, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const e of await readDir(mem, cid)) {
    const path = prefix + e.name
    const content = () => Buffer.from(mem.objects.get(e.cid.toString())!).toString()
    if (e.kind === 'dir') {
      out[path + '/'] = 'dir'
      Object.assign(out, await show(mem, e.cid, path + '/'))
    } else if (e.kind === 'link') out[path] = `-> ${content()}`
    else out[path] = `${content()}@${e.mtime}${e.exec ? '+x' : ''}`
  }
  return out
}

interface Case { base?: Spec; ours: Spec; theirs: Spec; oursLabel?: string; theirsLabel?: string }

/** Merges both ways, asserts the results are byte-identical, and returns the tree as text. */
async function merge(c: Case): Promise<{ tree: Record<string, string>; conflicts: TreeMerge['conflicts']; editsKept: TreeMerge['editsKept'] }> {
  const mem = new Mem()
  const base = c.base === undefined ? undefined : build(mem, c.base)
  const [o, t] = [build(mem, c.ours), build(mem, c.theirs)]
  const [ol, tl] = [c.oursLabel ?? 'peerA', c.theirsLabel ?? 'peerB']
  const one = await mergeTrees(mem, mem, base, o, t, { oursLabel: ol, theirsLabel: tl })
  const two = await mergeTrees(mem, mem, base, t, o, { oursLabel: tl, theirsLabel: ol })
  assert.equal(one.tree.toString(), two.tree.toString(), 'merge must not depend on which side is ours')
  assert.deepEqual(one.conflicts, two.conflicts)
  assert.deepEqual(one.editsKept, two.editsKept)
  return { tree: await show(mem, one.tree), conflicts: one.conflicts, editsKept: one.editsKept }
}

describe('history/merge rules', () => {
  it('takes an entry equal on both sides, with the later mtime', async () => {
    const r = await merge({ base: { f: file('x', 1) }, ours: { f: file('y', 5) }, theirs: { f: file('y', 9) } })
    assert.deepEqual(r.tree, { f: 'y@9' })
    assert.deepEqual(r.conflicts, [])
  })

  it('takes the side that changed when the other did not: add, edit and delete', async () => {
    const base = { edit: 'old', gone: 'x', keep: 'k' }
    const r = await merge({ base, ours: base, theirs: { edit: 'new', keep: 'k', added: file('a', 7, true), l: link('t') } })
    assert.deepEqual(r.tree, { added: 'a@7+x', edit: 'new@1000', keep: 'k@1000', l: '-> t' })
  })

  it('merges changes to different files inside the same directory', async () => {
    const r = await merge({
      base: { d: { a: 'a0', b: 'b0', c: 'c0' } },
      ours: { d: { a: 'a1', b: 'b0', c: 'c0' } },
      theirs: { d: { a: 'a0', b: 'b1', new: { deep: 'n' } } }
    })
    assert.deepEqual(r.tree, { 'd/': 'dir', 'd/a': 'a1@1000', 'd/b': 'b1@1000', 'd/new/': 'dir', 'd/new/deep': 'n@1000' })
  })

  it('keeps a modification against a deletion', async () => {
    const r = await merge({ base: { f: file('x', 1) }, ours: { f: file('y', 2) }, theirs: {} })
    assert.deepEqual(r.tree, { f: 'y@2' })
    assert.deepEqual(r.editsKept, ['f'], 'item 5: the outcome is reported, so it can be logged')
    const touched = await merge({ base: { f: file('x', 1) }, ours: { f: file('x', 2) }, theirs: {} })
    assert.deepEqual(touched.tree, { f: 'x@2' })
  })

  it('keeps only the modified paths of a directory the other side deleted', async () => {
    const r = await merge({ base: { d: { a: 'a0', b: 'b0', s: { c: 'c0' } } }, ours: { d: { a: 'a1', b: 'b0', s: { c: 'c0' } } }, theirs: {} })
    assert.deepEqual(r.tree, { 'd/': 'dir', 'd/a': 'a1@1000' })
    assert.deepEqual(r.editsKept, ['d/a'])
    const onlyDeletes = await merge({ base: { d: { a: 'a0', b: 'b0' } }, ours: { d: { a: 'a0' } }, theirs: {} })
    assert.deepEqual(onlyDeletes.tree, {})
    assert.deepEqual(onlyDeletes.editsKept, [])
  })

  it('keeps both versions when a file changed differently on both sides', async () => {
    const r = await merge({ base: { 'notes.txt': file('v0', 1) }, ours: { 'notes.txt': file('ours', 1700000000000) }, theirs: { 'notes.txt': file('theirs', 1700000001000) } })
    assert.deepEqual(r.tree, { 'notes.sync-conflict-peerA-20231114-221320.txt': 'ours@1700000000000', 'notes.txt': 'theirs@1700000001000' })
    assert.deepEqual(r.conflicts, [{ path: 'notes.txt', keptPath: 'notes.txt', copyPath: 'notes.sync-conflict-peerA-20231114-221320.txt' }])
    assert.deepEqual(r.editsKept, [])
  })

  it('keeps both versions when both sides added different files under one name, in a subdirectory', async () => {
    const r = await merge({ ours: { d: { x: file('one', 5) } }, theirs: { d: { x: file('two', 5) } } })
    // Equal mtimes: the larger CID keeps the name.
    const [win, lose] = Buffer.compare(cidOf(RAW, Buffer.from('one')).bytes, cidOf(RAW, Buffer.from('two')).bytes) > 0 ? ['one', 'two'] : ['two', 'one']
    const loserLabel = lose === 'one' ? 'peerA' : 'peerB'
    assert.deepEqual(r.tree, { 'd/': 'dir', 'd/x': `${win}@5`, [`d/x.sync-conflict-${loserLabel}-19700101-000000`]: `${lose}@5` })
    assert.equal(r.conflicts[0]?.path, 'd/x')
  })

  it('breaks a full tie (same content and mtime, exec differs) by the larger label', async () => {
    const r = await merge({ ours: { f: file('same', 5, true) }, theirs: { f: file('same', 5, false) }, oursLabel: 'zed', theirsLabel: 'amy' })
    assert.deepEqual(r.tree, { f: 'same@5+x', 'f.sync-conflict-amy-19700101-000000': 'same@5' })
  })

  it('lets a content edit win over a touch without a conflict', async () => {
    const r = await merge({ base: { f: file('x', 1) }, ours: { f: file('x', 99) }, theirs: { f: file('y', 2) } })
    assert.deepEqual(r.tree, { f: 'y@2' })
    assert.deepEqual(r.conflicts, [])
  })

  it('gives the name to the directory and makes the file a conflict copy on a kind clash', async () => {
    const r = await merge({ ours: { x: file('f', 3000) }, theirs: { x: { inner: 'i' } } })
    assert.deepEqual(r.tree, { 'x/': 'dir', 'x/inner': 'i@1000', 'x.sync-conflict-peerA-19700101-000003': 'f@3000' })
    assert.deepEqual(r.conflicts, [{ path: 'x', keptPath: 'x', copyPath: 'x.sync-conflict-peerA-19700101-000003' }])
  })

  it('merges the surviving directory with its base when the other side replaced it by a file', async () => {
    const base = { x: { a: 'a0', b: 'b0' } }
    const r = await merge({ base, ours: { x: { a: 'a1', b: 'b0' } }, theirs: { x: link('elsewhere') } })
    assert.deepEqual(r.tree, { 'x/': 'dir', 'x/a': 'a1@1000', 'x.sync-conflict-peerB-19700101-000000': '-> elsewhere' })
    const onlyDeletes = await merge({ base, ours: { x: { a: 'a0' } }, theirs: { x: 'file now' } })
    assert.deepEqual(onlyDeletes.tree, { x: 'file now@1000' })
  })

  it('numbers conflict copies when the first name is taken', async () => {
    const taken = 'f.sync-conflict-peerA-19700101-000001'
    const r = await merge({ base: { f: file('b', 1) }, ours: { f: file('o', 1000), [taken]: 'already here' }, theirs: { f: file('t', 2000) } })
    assert.equal(r.tree[`${taken}-2`], 'o@1000')
    assert.equal(r.tree[taken], 'already here@1000')
    assert.equal(r.conflicts[0]?.copyPath, `${taken}-2`)
  })

  it('keeps empty directories added on one side and an empty root', async () => {
    assert.deepEqual((await merge({ base: {}, ours: { e: {} }, theirs: {} })).tree, { 'e/': 'dir' })
    assert.deepEqual((await merge({ base: { a: 'x' }, ours: {}, theirs: { a: 'x' } })).tree, {})
  })

  it('keeps a directory both sides emptied differently', async () => {
    const r = await merge({ base: { d: { a: '1', b: '2' } }, ours: { d: { a: '1' } }, theirs: { d: { b: '2' } } })
    assert.deepEqual(r.tree, { 'd/': 'dir' })
  })

  it('reuses equal or one-sided subtrees by CID without loading them', async () => {
    const mem = new Mem()
    const big: Record<string, Spec> = {}
    for (let i = 0; i < 50; i++) big[`d${i}`] = { f: `content ${i}`, sub: { g: `g${i}` } }
    const base = build(mem, { big, edited: { f: '0' }, mine: { f: '0' } })
    const ours = build(mem, { big, edited: { f: '1' }, mine: { f: 'changed by us' } })
    const theirs = build(mem, { big, edited: { f: '1' }, mine: { f: '0' } })
    mem.loads = 0
    const r = await mergeTrees(mem, mem, base, ours, theirs, { oursLabel: 'a', theirsLabel: 'b' })
    // Only the three roots: `big` and `edited` are equal on both sides, `mine` changed on one.
    assert.equal(mem.loads, 3)
    assert.deepEqual(await show(mem, r.tree).then((t) => [t['edited/f'], t['mine/f']]), ['1@1000', 'changed by us@1000'])
  })

  it('throws LEFT_MISSING_OBJECT when a directory it must open is missing', async () => {
    const mem = new Mem()
    const ours = build(mem, { a: '1' })
    const theirs = encodeNode({ type: 'dir', entries: [{ name: 'b', kind: 'file', cid: cidOf(RAW, Buffer.from('2')), size: 1, mtime: 0, exec: false }] }).cid
    await assert.rejects(mergeTrees(mem, mem, undefined, ours, theirs, { oursLabel: 'a', theirsLabel: 'b' }), (err: { code?: string }) => err.code === 'LEFT_MISSING_OBJECT')
  })
})

/** Small random trees over a few colliding names, so every rule gets exercised. */
const leafArb: fc.Arbitrary<string | Leaf> = fc.oneof(
  fc.constantFrom('x', 'y'),
  fc.record({ leaf: fc.constant('file' as const), content: fc.constantFrom('x', 'y', 'z'), mtime: fc.constantFrom(1000, 2000), exec: fc.boolean() }),
  fc.constantFrom(link('x'), link('y'))
)
const { tree: treeArb } = fc.letrec<{ tree: Spec; node: string | Leaf | Spec }>((tie) => ({
  tree: fc.dictionary(fc.constantFrom('a', 'b', 'a.txt', '.h', 'a.sync-conflict-p1-19700101-000001.txt'), tie('node'), { maxKeys: 4 }),
  node: fc.oneof({ maxDepth: 3, depthIdentifier: 'tree' }, leafArb, tie('tree'))
}))

describe('history/merge properties', () => {
  it('is symmetric and writes only valid, complete trees', async () => {
    await fc.assert(fc.asyncProperty(fc.option(treeArb, { nil: undefined }), treeArb, treeArb, fc.constantFrom('p1', 'p2'), fc.constantFrom('p1', 'p2'),
      async (base, ours, theirs, oursLabel, theirsLabel) => {
        const r = await merge({ ...(base === undefined ? {} : { base }), ours, theirs, oursLabel, theirsLabel })
        for (const path of Object.keys(r.tree)) for (const seg of path.split('/').filter((s) => s !== '')) assert.ok(isValidName(seg))
        for (const c of r.conflicts) {
          assert.ok(c.copyPath in r.tree, `conflict copy ${c.copyPath} is in the tree`)
          assert.ok(c.keptPath in r.tree || `${c.keptPath}/` in r.tree, `kept ${c.keptPath} is in the tree`)
        }
      }), { numRuns: 300 })
  })

  it('returns the other side unchanged when one side equals the base', async () => {
    await fc.assert(fc.asyncProperty(treeArb, treeArb, async (base, theirs) => {
      const mem = new Mem()
      const [b, t] = [build(mem, base), build(mem, theirs)]
      const r = await mergeTrees(mem, mem, b, b, t, { oursLabel: 'p1', theirsLabel: 'p2' })
      assert.equal(r.tree.toString(), t.toString())
    }), { numRuns: 100 })
  })
})
