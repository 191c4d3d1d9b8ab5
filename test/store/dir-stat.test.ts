import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdir, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Repo, storeOf } from '../../src/repo/repo.js'
import type { DirStat } from '../../src/store/index.js'
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

  /** Directory `dir`'s own stat entry. */
  async function self(r: Repo, dir: string): Promise<DirStat | undefined> {
    return (await storeOf(r).statDir(dir)).self
  }

  /** Puts directory entries back as a LEFT that knows nothing of them would have left them. */
  async function restore(r: Repo, entries: Record<string, DirStat | undefined>): Promise<void> {
    await storeOf(r).write({ dirStat: new Map(Object.entries(entries).map(([dir, e]) => [dir, e!])) })
  }

  it('encodes only the directories on the path of a change, and none when nothing changed', async () => {
    // `__proto__` is an ordinary folder name, also in a DirStat's list; an
    // ignored file does not make its folder change.
    const r = await committed({
      'a/b/c/deep.txt': 'deep', 'a/side.txt': 'side', 'a/__proto__/p.txt': 'p', 'other/o.txt': 'o', 'other/run.log': 'log',
      'top.txt': 'top', '.leftignore': '*.log\n'
    })
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

  it('makes a sharded directory whose files are known by their stat entries the node a scan reading every file makes', async () => {
    const files: Record<string, string> = { 'wide/run.sh': '#!/bin/sh\n', 'wide/sub/s.txt': 's' }
    for (let i = 0; i < 300; i++) files[`wide/f-${i}.txt`] = `line ${i}\n`
    const r = await committed(files)
    await chmod(join(r.share, 'wide/run.sh'), 0o755)
    await sleep(250)
    assert.deepEqual((await r.commit())!.summary, { added: 0, modified: 1, deleted: 0 })
    // A stat entry whose CID is damaged: that file is read again.
    const damaged = (await storeOf(r).statDir('wide')).files.get('f-3.txt')!
    await storeOf(r).write({ stat: new Map([['wide/f-3.txt', { ...damaged, cid: 'bdamaged' }]]) })
    await put(r, 'wide/f-7.txt', 'edited')
    await sleep(250)
    assert.deepEqual((await r.commit())!.summary, { added: 0, modified: 1, deleted: 0 })
    // Every other file was taken from its stat entry; with none, each is read.
    await storeOf(r).write({ statUnder: [''] })
    assert.equal((await r.scan(false)).root.toString(), (await r.headTree())!.toString())
  })

  it('skips a file whose name begins with U+FEFF, which would decode as another name', async () => {
    const r = await committed({ 'ok.txt': 'ok', '\ufeffbom.txt': 'bom' })
    assert.ok(await inHead(r, 'ok.txt'))
    assert.equal(await inHead(r, '\ufeffbom.txt'), undefined)
    assert.equal(await inHead(r, 'bom.txt'), undefined)
    const skipped: string[] = []
    assert.equal(await r.commit(undefined, { onSkip: (path, _why, kind) => { if (kind === 'unsyncable') skipped.push(path) } }), undefined)
    assert.deepEqual(skipped, ['\ufeffbom.txt'])
  })

  it('keeps stat cache names that begin with U+FEFF as they are', { timeout: 30_000 }, async () => {
    // A commit skips such names (object/name.ts), but the stat cache must not
    // take a byte order mark off a path: a folder's name read short seeks
    // back to itself.
    const r = await committed({ 'd/a.txt': 'a' })
    const bom = '\ufeff'
    const entry = (await storeOf(r).statDir('d')).files.get('a.txt')!
    const paths = [`${bom}top.txt`, `d/${bom}a.txt`, `d/${bom}sub/s.txt`, 'd/sub0.txt']
    await storeOf(r).write({ stat: new Map(paths.map((p) => [p, entry])) })
    const d = await storeOf(r).statDir('d')
    assert.deepEqual([...d.files.keys()].sort(), [`${bom}a.txt`, 'a.txt', 'sub0.txt'].sort())
    assert.deepEqual([...d.dirs], [`${bom}sub`])
    assert.ok((await storeOf(r).statDir('')).files.has(`${bom}top.txt`))
  })

  it('sees a file deleted that was too new to be in the stat cache when its directory was encoded', async () => {
    const r = await committed({ 'd/old.txt': 'old' })
    await put(r, 'd/new.txt', 'new')
    // A timestamp ahead of the scan makes new.txt racy: it gets no stat
    // entry, so once it is gone the directory's files all match the cache.
    const ahead = Date.now() / 1000 + 5
    await utimes(join(r.share, 'd/new.txt'), ahead, ahead)
    assert.ok(await r.commit())
    assert.equal((await storeOf(r).statDir('d')).files.has('new.txt'), false)
    assert.ok(await self(r, 'd'))
    await sleep(250)
    await rm(join(r.share, 'd/new.txt'))
    const result = (await r.commit())!
    assert.deepEqual(result.summary, { added: 0, modified: 0, deleted: 1 })
    assert.equal(await inHead(r, 'd/new.txt'), undefined)
  })

  it('takes in a symlink or an empty folder added to a folder it has an entry for', async () => {
    const r = await committed({ 'd/f.txt': 'f', 'e/g.txt': 'g' })
    assert.ok((await self(r, 'd')) && (await self(r, 'e')))
    await symlink('f.txt', join(r.share, 'd/link'))
    await mkdir(join(r.share, 'e/empty'))
    const result = (await r.commit())!
    assert.deepEqual(result.summary, { added: 1, modified: 0, deleted: 0 }, 'the link; folders are not counted')
    assert.ok(await inHead(r, 'd/link'))
    assert.ok(await inHead(r, 'e/empty'))
  })

  it('does not revert a file a peer changed when it commits next, even where an older LEFT left its folder entry', async () => {
    const a = await committed({ 'd/x.txt': 'x0', 'd/y.txt': 'y' })
    const b = await repo(`b-${n++}`)
    await bring(a, b, (await a.head())!)
    await sleep(250)
    // B's scan records d's node; then A's edit arrives and is written into d.
    assert.equal(await b.commit(), undefined)
    const before = await self(b, 'd')
    assert.ok(before)
    await put(a, 'd/x.txt', 'x1 from A')
    await sleep(250)
    const edit = (await a.commit())!
    await bring(a, b, edit.cid)
    assert.equal(await readFile(join(b.share, 'd/x.txt'), 'utf8'), 'x1 from A')
    assert.equal(await self(b, 'd'), undefined, 'writing x.txt\'s stat entry dropped it')
    // An older LEFT writes the stat entry and leaves the folder's entry be:
    // x.txt's ctime, later than the entry, still gives it away.
    await restore(b, { d: before })
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
    assert.ok(await self(b, 'd'))
    await put(a, 'd/new.psd', 'psd')
    await bring(a, b, (await a.commit())!.cid)
    // Not written on B (it ignores it), but still in B's HEAD, and kept there.
    await assert.rejects(readFile(join(b.share, 'd/new.psd')))
    assert.equal(await b.commit(), undefined)
    assert.ok(await inHead(b, 'd/new.psd'))
  })

  it('forgets a directory entry whose node gc deletes, and does not trust one an older gc left', async () => {
    const r = await committed({ 'd/a.txt': 'a', 'e/e.txt': 'e' })
    await rename(join(r.share, 'd/a.txt'), join(r.share, 'd/b.txt'))
    await sleep(250)
    // A stored scan that no commit follows (as a kill mid-commit leaves):
    // d's new node is in the store, and b.txt's content is HEAD's a.txt.
    await r.scan(true)
    const left = { '': await self(r, ''), d: await self(r, 'd') }
    assert.ok(left[''] && left.d)
    await r.gc()
    assert.deepEqual([await self(r, ''), await self(r, 'd')], [undefined, undefined])
    await restore(r, left)
    const result = (await r.commit())!
    assert.deepEqual(result.summary, { added: 1, modified: 0, deleted: 1 })
    const report = await r.fsck()
    assert.deepEqual([report.missing, report.corrupt], [[], []])
    assert.ok(await inHead(r, 'd/b.txt'))
  })
})
