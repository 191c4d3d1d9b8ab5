import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Repo, storeOf } from '../../src/repo/repo.js'
import { lookupPath } from '../../src/tree/lookup.js'
import { sleep } from '../helpers/peers.js'
import { suiteRepos } from '../sync/fixtures.js'

/**
 * A directory's stat entry (DirStat) lets a scan take an unchanged
 * directory's node without encoding it. Each test here is a way it could
 * vouch for a node that is no longer the folder's content; each fails if
 * the check that prevents it is taken out.
 */
describe('repo: a directory is re-encoded only when something in it changed', () => {
  const { repo, bring } = suiteRepos('left-dirstat-')
  let n = 0

  async function put(r: Repo, path: string, text: string): Promise<void> {
    await mkdir(join(r.share, path, '..'), { recursive: true })
    await writeFile(join(r.share, path), text)
  }

  /** A repo with `files` committed, old enough to be in the stat cache (racy clean is 100 ms). */
  async function committed(files: Record<string, string>): Promise<Repo> {
    const r = await repo(`r-${n++}`)
    for (const [path, text] of Object.entries(files)) await put(r, path, text)
    await sleep(250)
    assert.ok(await r.commit('start'))
    return r
  }

  async function inHead(r: Repo, path: string): Promise<string | undefined> {
    return (await lookupPath(storeOf(r), (await r.headTree())!, path))?.cid.toString()
  }

  it('encodes only the directories on the path of a change, and none when nothing changed', async () => {
    const r = await committed({ 'a/b/c/deep.txt': 'deep', 'a/side.txt': 'side', 'other/o.txt': 'o', 'top.txt': 'top' })
    // A dry run keeps the nodes it encoded in `dirs`.
    assert.equal((await r.scan(false)).dirs.size, 0)
    await put(r, 'a/b/c/deep.txt', 'deep, edited')
    await sleep(250)
    const scan = await r.scan(false)
    assert.equal(scan.dirs.size, 4, 'a/b/c, a/b, a and the top')
    const result = (await r.commit())!
    assert.deepEqual(result.summary, { added: 0, modified: 1, deleted: 0 })
    assert.ok((await r.headTree())!.equals(scan.root))
  })

  it('sees a file deleted that was too new to be in the stat cache when its directory was encoded', async () => {
    const r = await committed({ 'd/old.txt': 'old' })
    await put(r, 'd/new.txt', 'new')
    // Committed at once: new.txt is racy, so it has no stat entry, and the
    // directory's files all match the cache after it is gone.
    assert.ok(await r.commit())
    await sleep(250)
    await rm(join(r.share, 'd/new.txt'))
    const result = (await r.commit())!
    assert.deepEqual(result.summary, { added: 0, modified: 0, deleted: 1 })
    assert.equal(await inHead(r, 'd/new.txt'), undefined)
  })

  it('does not revert a file a peer changed when it commits next', async () => {
    const a = await committed({ 'd/x.txt': 'x0', 'd/y.txt': 'y' })
    const b = await repo(`b-${n++}`)
    await bring(a, b, (await a.head())!)
    await sleep(250)
    // B's scan records d's node; then A's edit arrives and is written into d.
    assert.equal(await b.commit(), undefined)
    await put(a, 'd/x.txt', 'x1 from A')
    await sleep(250)
    const edit = (await a.commit())!
    await bring(a, b, edit.cid)
    assert.equal(await readFile(join(b.share, 'd/x.txt'), 'utf8'), 'x1 from A')
    assert.equal(await b.commit(), undefined, 'the folder is what HEAD says')
    assert.equal(await inHead(b, 'd/x.txt'), await inHead(a, 'd/x.txt'))
  })

  it('keeps a file a peer added where the receiver ignores it, with nothing ignored in its folder', async () => {
    const a = await committed({ 'd/text.txt': 't' })
    const b = await repo(`b-${n++}`)
    await bring(a, b, (await a.head())!)
    await writeFile(join(b.layout.leftDir, 'ignore'), '*.psd\n')
    await sleep(250)
    assert.equal(await b.commit(), undefined)
    await put(a, 'd/new.psd', 'psd')
    await bring(a, b, (await a.commit())!.cid)
    // Not written on B (it ignores it), but still in B's HEAD, and kept there.
    await assert.rejects(readFile(join(b.share, 'd/new.psd')))
    assert.equal(await b.commit(), undefined)
    assert.ok(await inHead(b, 'd/new.psd'))
  })

  it('forgets a directory entry whose node gc deletes', async () => {
    const r = await committed({ 'd/a.txt': 'a', 'e/e.txt': 'e' })
    await rename(join(r.share, 'd/a.txt'), join(r.share, 'd/b.txt'))
    await sleep(250)
    // A stored scan that no commit follows (as a kill mid-commit leaves):
    // d's new node is in the store, and b.txt's content is HEAD's a.txt.
    await r.scan(true)
    await r.gc()
    const result = (await r.commit())!
    assert.deepEqual(result.summary, { added: 1, modified: 0, deleted: 1 })
    const report = await r.fsck()
    assert.deepEqual([report.missing, report.corrupt], [[], []])
    assert.ok(await inHead(r, 'd/b.txt'))
  })
})
