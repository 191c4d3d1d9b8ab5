import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { decodeCommit, encodeNode } from '../../src/object/index.js'
import { generationAfter } from '../../src/history/ancestry.js'
import { readLog } from '../../src/history/log.js'
import { describeChanges } from '../../src/repo/repo.js'
import type { Change } from '../../src/tree/diff.js'
import { Pathspec } from '../../src/tree/pathspec.js'
import type { ObjectSource } from '../../src/tree/source.js'
import { type Spec, buildTree } from '../helpers/tree-spec.js'

describe('tree/pathspec', () => {
  const matches = (patterns: string[], path: string): boolean => new Pathspec(patterns).matches(path)

  it('names a path, and everything below a folder it names', () => {
    assert.ok(matches(['sub/q.txt'], 'sub/q.txt'))
    assert.ok(matches(['sub'], 'sub/q.txt'))
    assert.ok(matches(['sub'], 'sub'))
    assert.ok(!matches(['sub'], 'subway/q.txt'), 'a folder name is not a string prefix')
    assert.ok(!matches(['sub/q.txt'], 'sub'))
  })

  it('reads globs as git does: * and ? cross folders, [...] is a set, [!...] its complement', () => {
    assert.ok(matches(['*.jpg'], 'a.jpg'))
    assert.ok(matches(['*.jpg'], 'photos/2026/a.jpg'), '* matches / too (git, not FNM_PATHNAME)')
    assert.ok(!matches(['*.jpg'], 'a.jpeg'))
    assert.ok(matches(['?.txt'], 'q.txt'))
    assert.ok(matches(['[ab].txt'], 'b.txt') && !matches(['[ab].txt'], 'c.txt'))
    assert.ok(matches(['[!ab].txt'], 'c.txt') && !matches(['[!ab].txt'], 'a.txt'))
    assert.ok(matches(['s*'], 'sub/deep/q.txt'), 'a glob that names a folder names what is in it')
    assert.ok(matches(['a+b(1).txt'], 'a+b(1).txt') && !matches(['a.b'], 'axb'), 'regex characters are literal')
  })

  it('names everything with no patterns, or with the share folder itself', () => {
    assert.ok(new Pathspec([]).all && new Pathspec(['']).all)
    assert.ok(matches([], 'any/thing') && matches([''], 'any/thing'))
  })
})

describe('repo/describeChanges: automatic commit messages name the files', () => {
  const change = (path: string, kind: Change['kind'], entryKind: 'file' | 'dir' = 'file'): Change => {
    const entry = { name: path.split('/').pop()!, kind: entryKind, cid: undefined as unknown as CID, size: 1, mtime: 0, exec: false }
    return { path, kind, ...(kind !== 'added' ? { before: entry } : {}), ...(kind !== 'deleted' ? { after: entry } : {}) }
  }

  it('says what happened to up to three files, and counts the rest', () => {
    assert.equal(describeChanges([change('a.jpg', 'added')]), 'add a.jpg')
    assert.equal(describeChanges([change('a.jpg', 'added'), change('b.jpg', 'added')]), 'add a.jpg and b.jpg')
    assert.equal(describeChanges([change('a', 'deleted'), change('b', 'deleted'), change('c', 'deleted')]), 'delete a, b and c')
    assert.equal(describeChanges([change('notes.txt', 'modified'), change('a.jpg', 'added'), change('x', 'added'), change('y', 'deleted'), change('z', 'added')]),
      'update notes.txt, a.jpg and 3 more')
  })

  it('names files, not the folders that hold them, and folders only when nothing else changed', () => {
    assert.equal(describeChanges([change('sub', 'added', 'dir'), change('sub/q.txt', 'added')]), 'add sub/q.txt')
    assert.equal(describeChanges([change('empty', 'added', 'dir')]), 'add empty')
    assert.equal(describeChanges([]), 'update folders')
  })
})

describe('history/log: paths and merges', () => {
  const objects = new Map<string, Uint8Array>()
  const src: ObjectSource = { get: async (cid) => objects.get(cid.toString()) }
  let clock = 1000
  const commit = (tree: Spec, parents: CID[], message: string): CID => {
    const block = encodeNode({ type: 'commit', tree: buildTree(objects, tree), parents: [...parents].sort((a, b) => Buffer.compare(a.bytes, b.bytes)), generation: generationAfter(parents.map((p) => decodeCommit(objects.get(p.toString())!))), author: 'p', time: clock++, message })
    objects.set(block.cid.toString(), block.bytes)
    return block.cid
  }
  // first -> (edit q | add other) -> a merge that takes both, then a merge that decides q anew.
  const first = commit({ sub: { 'q.txt': 'q1' } }, [], 'first')
  const editQ = commit({ sub: { 'q.txt': 'q2' } }, [first], 'edit q')
  const addOther = commit({ sub: { 'q.txt': 'q1' }, 'other.txt': 'o' }, [first], 'add other')
  const merged = commit({ sub: { 'q.txt': 'q2' }, 'other.txt': 'o' }, [editQ, addOther], 'merge')
  const side = commit({ sub: { 'q.txt': 'q3' }, 'other.txt': 'o' }, [merged], 'side')
  const resolved = commit({ sub: { 'q.txt': 'q4' }, 'other.txt': 'o' }, [side, merged], 'resolve q')
  const messages = async (paths: string[], heads = [resolved]): Promise<string[]> => {
    const out: string[] = []
    for await (const e of readLog(src, heads, { paths: new Pathspec(paths) })) out.push(e.commit.message)
    return out
  }

  it('shows every commit with its changes against each parent', async () => {
    const all = []
    for await (const e of readLog(src, [resolved])) all.push(e)
    assert.deepEqual(all.map((e) => e.commit.message), ['resolve q', 'side', 'merge', 'add other', 'edit q', 'first'])
    const merge = all.find((e) => e.commit.message === 'merge')!
    const against = merge.commit.parents.map((p) => p.equals(editQ) ? 'editQ' : 'addOther')
    const paths = merge.changes.map((list) => list.map((c) => c.path).join(','))
    assert.deepEqual(Object.fromEntries(against.map((a, i) => [a, paths[i]])), { editQ: 'other.txt', addOther: 'sub/q.txt' })
  })

  it('with paths, shows the commits that changed them, and a merge only where it differs from every parent', async () => {
    assert.deepEqual(await messages(['sub/q.txt']), ['resolve q', 'side', 'edit q', 'first'])
    assert.deepEqual(await messages(['other.txt']), ['add other'])
    assert.deepEqual(await messages(['sub']), await messages(['sub/q.txt']))
    assert.deepEqual(await messages(['nothing-here']), [])
  })

  it('walks several heads as one history, each commit once, and stops at the limit', async () => {
    const out = []
    for await (const e of readLog(src, [editQ, addOther, first], { limit: 2 })) out.push(e.commit.message)
    assert.deepEqual(out, ['add other', 'edit q'])
  })
})
