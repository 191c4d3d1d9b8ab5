import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import type { DirEntry } from '../../src/object/index.js'
import { type PathChange, applyWindows } from '../../src/worktree/materialize.js'

const cid = CID.parse('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
const file: DirEntry = { name: 'x', kind: 'file', cid, size: 1, exec: false, mtime: 0 }
const dir: DirEntry = { name: 'x', kind: 'dir', cid, size: 0, exec: false, mtime: 0 }

async function* stream(changes: PathChange[]): AsyncGenerator<PathChange> {
  yield* changes
}

/** The paths of each window. */
async function windows(changes: PathChange[], size: number): Promise<string[][]> {
  const out: string[][] = []
  for await (const w of applyWindows(stream(changes), size)) out.push(w.map((c) => c.path))
  return out
}

describe('worktree/applyWindows', () => {
  it('cuts a stream into windows of the given size, in order, the last one short', async () => {
    const added = ['a', 'b', 'c', 'd', 'e'].map((path) => ({ path, after: file }))
    assert.deepEqual(await windows(added, 2), [['a', 'b'], ['c', 'd'], ['e']])
    assert.deepEqual(await windows([], 2), [])
  })

  it('moves a directory being removed on to the window where the last path below it goes', async () => {
    const changes: PathChange[] = [
      { path: 'a', after: file },
      { path: 'gone', before: dir },
      { path: 'gone/1', before: file },
      { path: 'gone/2', before: dir },
      { path: 'gone/2/3', before: file },
      { path: 'gone2', after: file },
      { path: 'z', after: file }
    ]
    // `gone2` is not below `gone`: the window may end before it.
    assert.deepEqual(await windows(changes, 2), [['a'], ['gone/1'], ['gone', 'gone/2', 'gone/2/3'], ['gone2', 'z']])
  })

  it('moves a directory replaced by a file or link on with the removals below it, and holds no more than the depth over the size', async () => {
    const changes: PathChange[] = [
      { path: 'p', before: dir, after: file },
      { path: 'p/1', before: file },
      { path: 'p/2', before: file },
      { path: 'q', before: dir, after: { ...file, kind: 'link' } },
      { path: 'q/1', before: file },
      { path: 'r', after: file }
    ]
    assert.deepEqual(await windows(changes, 1), [['p/1'], ['p', 'p/2'], ['q', 'q/1'], ['r']])
    const deep: PathChange[] = []
    for (let d = 1; d <= 50; d++) deep.push({ path: Array.from({ length: d }, () => 'd').join('/'), before: dir })
    deep.push({ path: `${deep.at(-1)!.path}/f`, before: file }, { path: 'z', after: file })
    const cut = await windows(deep, 10)
    assert.deepEqual(cut.map((w) => w.length), [51, 1], 'nothing can go before the deepest file')
  })

  it('may cut below a directory that is made or kept: its parents come first', async () => {
    const changes: PathChange[] = [
      { path: 'n', after: dir },
      { path: 'n/1', after: file },
      { path: 'f', before: file, after: dir },
      { path: 'f/1', after: file },
      { path: 'm/1', before: file, after: file }
    ]
    assert.deepEqual(await windows(changes, 1), [['n'], ['n/1'], ['f'], ['f/1'], ['m/1']])
  })
})
