import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Repo, storeOf } from '../../src/repo/repo.js'
import { lookupPath } from '../../src/tree/lookup.js'
import { suiteRepos } from './fixtures.js'

/**
 * Two real repos on disk; `from`'s commits reach `to` the way sync brings
 * them: fetch the closure, then integrate.
 */
describe('repo: ignore rules never delete anything anywhere (issue 8, items 3 and 5)', () => {
  const { repo, bring } = suiteRepos('left-ignore-')
  let n = 0

  /** Two folders that both hold `files` (committed on A, integrated by B). */
  async function pair(files: Record<string, string>): Promise<{ a: Repo; b: Repo }> {
    const a = await repo(`a-${n}`)
    const b = await repo(`b-${n++}`)
    for (const [path, text] of Object.entries(files)) await put(a, path, text)
    await bring(a, b, (await a.commit('start'))!.cid)
    return { a, b }
  }

  async function put(repo: Repo, path: string, text: string): Promise<void> {
    await mkdir(join(repo.share, path, '..'), { recursive: true })
    await writeFile(join(repo.share, path), text)
  }

  const read = (repo: Repo, path: string): Promise<string> => readFile(join(repo.share, path), 'utf8')

  async function inHead(repo: Repo, path: string): Promise<boolean> {
    return (await lookupPath(storeOf(repo), (await repo.headTree())!, path)) !== undefined
  }

  it('item 3: a path that becomes ignored stays in history and on the other peer', async () => {
    const { a, b } = await pair({ 'photo.jpg': 'jpeg', 'notes.txt': 'notes' })
    await put(a, '.leftignore', '*.jpg\n')
    const commit = (await a.commit())!
    assert.deepEqual(commit.summary, { added: 1, modified: 0, deleted: 0 }, 'only .leftignore is new; nothing reads as deleted')
    const result = await bring(a, b, commit.cid)
    assert.deepEqual(result.deleted, [])
    assert.equal(await read(b, 'photo.jpg'), 'jpeg')
    assert.ok(await inHead(b, 'photo.jpg'))
    // Ignored on A now: edits and even its removal there stay out of history.
    await put(a, 'photo.jpg', 'edited on A')
    assert.deepEqual(await a.status(), [])
    await rm(join(a.share, 'photo.jpg'))
    assert.equal(await a.commit(), undefined)
    assert.ok(await inHead(a, 'photo.jpg'))
  })

  it('item 3: an incoming change neither writes nor deletes what the receiver ignores in .left/ignore', async () => {
    const { a, b } = await pair({ 'keep.psd': 'v0', 'gone.psd': 'g', 'text.txt': 't0' })
    await writeFile(join(b.layout.leftDir, 'ignore'), '*.psd\n')
    await put(a, 'keep.psd', 'v1 from A')
    await rm(join(a.share, 'gone.psd'))
    await put(a, 'text.txt', 't1')
    const result = await bring(a, b, (await a.commit())!.cid)
    assert.equal(await read(b, 'text.txt'), 't1')
    assert.equal(await read(b, 'keep.psd'), 'v0', 'not overwritten')
    assert.equal(await read(b, 'gone.psd'), 'g', 'not deleted')
    assert.deepEqual(result.deleted, [])
    assert.deepEqual(result.skipped, [])
    // B's folder matches its HEAD as far as LEFT looks, so it commits nothing.
    assert.deepEqual(await b.status(), [])
    assert.equal(await b.commit(), undefined)
  })

  it('item 3: a folder deleted by a peer stays where the receiver keeps ignored files in it, and does not come back', async () => {
    const { a, b } = await pair({ 'sub/a.txt': 'a', 'sub/deep/b.txt': 'b', 'top.txt': 'top' })
    await writeFile(join(b.layout.leftDir, 'ignore'), '*.log\n')
    await put(b, 'sub/deep/run.log', 'local log')
    await rm(join(a.share, 'sub'), { recursive: true })
    const result = await bring(a, b, (await a.commit())!.cid)
    assert.deepEqual([...result.deleted].sort(), ['sub/a.txt', 'sub/deep/b.txt'], 'item 5: each incoming deletion is reported')
    assert.deepEqual(result.skipped, [], 'ignored files are not a local edit to retry over')
    assert.equal(await read(b, 'sub/deep/run.log'), 'local log')
    assert.deepEqual(await readdir(join(b.share, 'sub')), ['deep'])
    // A folder holding only ignored files is not committed back to the peer.
    assert.equal(await b.commit(), undefined)
    assert.equal(await inHead(b, 'sub'), false)
  })

  it('item 5: a file deleted on one side and edited on the other is kept, and reported', async () => {
    const { a, b } = await pair({ 'f.txt': 'v0', 'other.txt': 'o' })
    await rm(join(a.share, 'f.txt'))
    const deletion = (await a.commit())!
    await put(b, 'f.txt', 'edited on B, longer')
    await b.commit()
    const result = await bring(a, b, deletion.cid)
    assert.equal(result.mode, 'merge')
    assert.deepEqual(result.editsKept, ['f.txt'])
    assert.deepEqual(result.deleted, [])
    assert.equal(await read(b, 'f.txt'), 'edited on B, longer')
  })
})
