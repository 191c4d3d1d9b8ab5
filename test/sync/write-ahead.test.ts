import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { Repo, storeOf } from '../../src/repo/repo.js'
import type { WriteAhead } from '../../src/repo/write-ahead.js'
import { fsck } from '../../src/repo/maintenance.js'
import { type BlockSource, fetchClosure } from '../../src/sync/fetch.js'
import { LATER_BYTES } from '../../src/sync/content.js'
import { parseCid } from '../../src/object/index.js'
import { fileLeaves } from '../../src/tree/file.js'
import { lookupPath } from '../../src/tree/lookup.js'
import { loadCommit } from '../../src/tree/source.js'
import { seededBytes } from '../helpers/data.js'
import { ChangedPaths } from '../../src/worktree/changed-paths.js'
import { StoreSource, suiteRepos } from './fixtures.js'

const SMALL = 12
const BIG_BYTES = LATER_BYTES + 1024 * 1024

/** A source that keeps back the answers for `held` CIDs until `release`. */
class GatedSource implements BlockSource {
  /** CID strings asked for, in order. */
  readonly asked: string[] = []
  private open = false
  private readonly waiting: Array<() => void> = []

  constructor(private readonly inner: StoreSource, private readonly held: ReadonlySet<string>) {}

  async request(cid: CID): Promise<Uint8Array> {
    const key = cid.toString()
    this.asked.push(key)
    if (this.held.has(key) && !this.open) await new Promise<void>((resolve) => this.waiting.push(resolve))
    if (this.failed) throw new Error('connection dropped')
    return this.inner.request(cid)
  }

  release(): void {
    this.open = true
    for (const w of this.waiting.splice(0)) w()
  }

  /** Fails every held request, as a dropped connection would. */
  fail(): void {
    this.failed = true
    this.release()
  }

  private failed = false
}

/** Calls `check` until it returns true; fails after `tries` turns of 20 ms. */
async function until(what: string, check: () => boolean | Promise<boolean>, tries = 500): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.fail(`never: ${what}`)
}

/**
 * Starts fetching `remote` into `dest` through `gate`, writing ahead, and
 * waits until the small files (and a.txt) are written: the big file is held back.
 */
async function writtenAhead(dest: Repo, remote: CID, gate: GatedSource): Promise<{ ahead: WriteAhead; fetching: Promise<unknown> }> {
  const ahead = await dest.writeAhead(remote)
  const fetching = fetchClosure(remote, dest.objects, gate, { base: ahead.base, onReady: (c) => ahead.ready(c) })
  // Failures are asserted where they are expected.
  fetching.catch(() => {})
  await until('the small files are written ahead', () => ahead.files === SMALL + 2)
  return { ahead, fetching }
}

/** The peer edits a.txt again on top of its head; that head is fetched whole into `dest`, while the first may still move. */
async function editedAgain(source: Repo, dest: Repo): Promise<CID> {
  await writeFile(join(source.share, 'a.txt'), 'v2, the peer again\n')
  const later = (await source.commit('v2'))!.cid
  await fetchClosure(later, dest.objects, new StoreSource(storeOf(source)))
  return later
}

/**
 * `dest` holds files written ahead of `remote` as its own: status lists
 * them, they commit, and the head, fetched whole, then merges with no
 * conflict (the same change on both sides), leaving nothing to commit.
 */
async function committedThenMergedCleanly(dest: Repo, source: Repo, remote: CID): Promise<void> {
  const changed = (await dest.status()).map((c) => c.path)
  assert.ok(changed.includes(smallName(0)) && changed.includes('a.txt'), changed.join(' '))
  assert.ok((await dest.commit('the folder as it is')) !== undefined)
  await fetchClosure(remote, dest.objects, new StoreSource(storeOf(source)))
  const result = await dest.integrate(remote)
  assert.equal(result.mode, 'merge')
  assert.deepEqual(result.conflicts, [], 'the same change on both sides')
  assert.deepEqual(await dest.status(), [])
}

/** Fetches `remote` into `dest` whole, writing ahead, and checks that nothing was written ahead. */
async function fetchedWithNothingAhead(dest: Repo, remote: CID, gate: GatedSource): Promise<WriteAhead> {
  const ahead = await dest.writeAhead(remote)
  gate.release()
  await fetchClosure(remote, dest.objects, gate, { base: ahead.base, onReady: (c) => ahead.ready(c) })
  await ahead.settle()
  assert.equal(ahead.files, 0)
  await assert.rejects(stat(join(dest.share, smallName(0))), { code: 'ENOENT' })
  return ahead
}

const smallName = (i: number): string => `new/f${String(i).padStart(2, '0')}.txt`
const smallText = (i: number): string => `small file ${i}\n`

describe('small files first: a fetch reports each file once its content is here, and the node writes it ahead of the head', () => {
  const suite = suiteRepos('left-ahead-')
  let n = 0

  /**
   * `source` holds a.txt; `dest` has brought it. Then `source` adds a big
   * file (first in path order), SMALL small files and a copy of one, and
   * edits a.txt: that commit is `remote`. The big file's chunks are held
   * back by the returned source until it is released.
   */
  async function scenario(): Promise<{ source: Repo; dest: Repo; remote: CID; gate: GatedSource; bigLeaves: Set<string> }> {
    const source = await suite.repo(`source-${n}`)
    const dest = await suite.repo(`dest-${n++}`)
    await writeFile(join(source.share, 'a.txt'), 'v0\n')
    await suite.bring(source, dest, (await source.commit('v0'))!.cid)
    await writeFile(join(source.share, 'a.txt'), 'v1, from the peer\n')
    await writeFile(join(source.share, '0-big.bin'), seededBytes('ahead-big', BIG_BYTES))
    await mkdir(join(source.share, 'new'))
    for (let i = 0; i < SMALL; i++) await writeFile(join(source.share, smallName(i)), smallText(i))
    await writeFile(join(source.share, 'new', 'copy.txt'), smallText(3))
    const remote = (await source.commit('v1'))!.cid
    const store = storeOf(source)
    const big = await lookupPath(store, (await loadCommit(store, remote)).tree, '0-big.bin')
    const bigLeaves = new Set<string>()
    for await (const leaf of fileLeaves(store, big!.cid, big!.size)) bigLeaves.add(leaf.cid.toString())
    return { source, dest, remote, gate: new GatedSource(new StoreSource(store), bigLeaves), bigLeaves }
  }

  it('asks for small files before a big one listed first, and reports each small file, and copies, before the big one lands', async () => {
    const { dest, remote, gate, bigLeaves } = await scenario()
    const ready: string[] = []
    let done = false
    const fetching = fetchClosure(remote, dest.objects, gate, { base: await dest.headTree(), onReady: (c) => ready.push(c.path) })
      .finally(() => { done = true })
    await until('every small file is reported', () => ready.length === SMALL + 2)
    assert.equal(done, false, 'the fetch waits for the big file')
    assert.deepEqual(ready.slice().sort(), ['a.txt', 'new/copy.txt', ...Array.from({ length: SMALL }, (_, i) => smallName(i))].sort())
    const firstBig = gate.asked.findIndex((k) => bigLeaves.has(k))
    assert.ok(firstBig > 0)
    assert.ok(gate.asked.slice(firstBig).every((k) => bigLeaves.has(k)), 'nothing small is asked for after the big file starts')
    gate.release()
    await fetching
    assert.equal(ready.at(-1), '0-big.bin')
    assert.equal(ready.length, SMALL + 3, 'each file once')
  })

  it('reports a file only once all its content is here, also what it shares with a file listed before it', async () => {
    const source = await suite.repo(`share-source-${n}`)
    const dest = await suite.repo(`share-dest-${n++}`)
    const [a, b, c] = ['a', 'b', 'c'].map((k) => seededBytes(`shared-${k}`, 600_000))
    // Cut by content, so y.bin shares most chunks of b with x.bin.
    await writeFile(join(source.share, 'x.bin'), Buffer.concat([a!, b!]))
    await writeFile(join(source.share, 'y.bin'), Buffer.concat([b!, c!]))
    await writeFile(join(source.share, 'z.txt'), 'alone\n')
    const head = (await source.commit('shared'))!.cid
    const store = storeOf(source)
    const leavesOf = async (path: string): Promise<Set<string>> => {
      const e = (await lookupPath(store, (await loadCommit(store, head)).tree, path))!
      const out = new Set<string>()
      for await (const leaf of fileLeaves(store, e.cid, e.size)) out.add(leaf.cid.toString())
      return out
    }
    const x = await leavesOf('x.bin')
    const y = await leavesOf('y.bin')
    const own = [...y].filter((k) => !x.has(k))
    assert.ok(own.length > 0 && own.length < y.size, 'y.bin shares some chunks with x.bin, not all')
    const gate = new GatedSource(new StoreSource(store), x)
    const ready: string[] = []
    const fetching = fetchClosure(head, dest.objects, gate, { onReady: (w) => ready.push(w.path) })
    const ownCids = own.map((k) => parseCid(k)!)
    await until('y.bin\'s own chunks are stored', async () => (await dest.objects.hasMany(ownCids)).every(Boolean))
    await until('z.txt is reported', () => ready.includes('z.txt'))
    assert.deepEqual(ready, ['z.txt'], 'y.bin waits for what it shares with x.bin, which is held back')
    gate.release()
    await fetching
    assert.ok(ready.includes('x.bin'))
    assert.ok(!ready.includes('y.bin'), 'what it shares was counted under x.bin: integrate writes it')
  })

  it('writes small files into the folder while the big one moves, keeps HEAD and commits nothing of them, then fast-forwards', async () => {
    const { source, dest, remote, gate } = await scenario()
    const before = (await dest.head())!
    const writes = new Map<string, number>()
    const onWrite = (path: string): void => { writes.set(path, (writes.get(path) ?? 0) + 1) }
    const ahead = await dest.writeAhead(remote, onWrite)
    const fetching = fetchClosure(remote, dest.objects, gate, { base: ahead.base, onReady: (c) => ahead.ready(c) })
    await until('the small files are written ahead', () => ahead.files === SMALL + 2)
    await ahead.settle()
    assert.equal(await readFile(join(dest.share, smallName(5)), 'utf8'), smallText(5))
    assert.equal(await readFile(join(dest.share, 'new', 'copy.txt'), 'utf8'), smallText(3))
    assert.equal(await readFile(join(dest.share, 'a.txt'), 'utf8'), 'v1, from the peer\n')
    await assert.rejects(stat(join(dest.share, '0-big.bin')), { code: 'ENOENT' })
    // In transit: not a local change, so nothing is committed or echoed.
    assert.ok((await dest.head())!.equals(before))
    assert.deepEqual(await dest.status(), [])
    assert.equal(await dest.commit('nothing of ours'), undefined)
    gate.release()
    await fetching
    await ahead.settle()
    const result = await dest.integrate(remote, onWrite)
    await ahead.end()
    assert.equal(result.mode, 'fast-forward', 'the files written ahead were taken as written, not as edits')
    assert.deepEqual(result.skipped, [])
    assert.ok((await dest.head())!.equals(remote))
    assert.equal(await dest.headTree().then(String), await source.headTree().then(String))
    assert.deepEqual(await dest.status(), [])
    assert.equal(await readFile(join(dest.share, '0-big.bin')).then((b) => b.equals(seededBytes('ahead-big', BIG_BYTES))), true)
    // Each file was written once, ahead of the head (the big one too, once released): integrate wrote none again.
    assert.deepEqual([...writes.values()].filter((k) => k !== 1), [])
    assert.equal(writes.size, SMALL + 3)
    assert.deepEqual((await fsck(storeOf(dest))).corrupt, [])
  })

  it('an edit to a file in transit is a local edit: status shows it, and integrate keeps both versions', async () => {
    const { dest, remote, gate } = await scenario()
    const { ahead, fetching } = await writtenAhead(dest, remote, gate)
    await ahead.settle()
    await writeFile(join(dest.share, smallName(7)), 'edited here while in transit\n')
    assert.deepEqual((await dest.status()).map((c) => c.path), ['new', smallName(7)])
    gate.release()
    await fetching
    const result = await dest.integrate(remote)
    await ahead.end()
    assert.equal(result.mode, 'merge')
    assert.deepEqual(result.conflicts.map((c) => c.path), [smallName(7)])
    const copy = result.conflicts[0]!.copyPath
    const both = [await readFile(join(dest.share, smallName(7)), 'utf8'), await readFile(join(dest.share, copy), 'utf8')].sort()
    assert.deepEqual(both, ['edited here while in transit\n', smallText(7)].sort())
    assert.deepEqual(await dest.status(), [])
  })

  it('a restart before the head lands leaves the files as a local change that merges cleanly with the head', async () => {
    const { source, dest, remote, gate } = await scenario()
    const { ahead, fetching } = await writtenAhead(dest, remote, gate)
    await ahead.settle()
    await ahead.end()
    gate.fail()
    await assert.rejects(fetching)
    // What a restart knows: the folder and the store, not the list in memory.
    await dest.close()
    const again = await Repo.open(dest.layout.root)
    try {
      await committedThenMergedCleanly(again, source, remote)
      assert.equal(await readFile(join(again.share, 'a.txt'), 'utf8'), 'v1, from the peer\n')
      assert.deepEqual((await fsck(storeOf(again))).corrupt, [])
    } finally {
      await again.close()
    }
  })

  it('a failed fetch leaves the files written ahead as the folder\'s own, which merge cleanly with the head when it comes', async () => {
    const { source, dest, remote, gate } = await scenario()
    const { ahead, fetching } = await writtenAhead(dest, remote, gate)
    gate.fail()
    await assert.rejects(fetching)
    await ahead.end()
    await committedThenMergedCleanly(dest, source, remote)
    assert.equal(await readFile(join(dest.share, smallName(4)), 'utf8'), smallText(4))
  })

  it('beside a watcher\'s record of changes, files in transit are looked at again once their fetch fails', async () => {
    const { dest, remote, gate } = await scenario()
    const changes = new ChangedPaths()
    dest.followChanges(changes)
    assert.equal(await dest.commit(undefined, { changedOnly: true }), undefined)
    const { ahead, fetching } = await writtenAhead(dest, remote, gate)
    // What a watcher would report of the files written ahead.
    for (const p of await readdir(dest.share, { recursive: true })) changes.add(p)
    assert.equal(await dest.commit('in transit', { changedOnly: true }), undefined, 'nothing of the peer\'s is ours yet')
    gate.fail()
    await assert.rejects(fetching)
    await ahead.end()
    // No event says so: the commit looks at them because the last one held them.
    const ours = (await dest.commit('the folder as it is', { changedOnly: true }))!
    assert.ok(ours.summary.added >= SMALL, JSON.stringify(ours.summary))
    assert.deepEqual(await dest.status(), [])
  })

  it('a merge that changes a file in transit again replaces it, with no conflict', async () => {
    const { source, dest, remote, gate } = await scenario()
    const { ahead, fetching } = await writtenAhead(dest, remote, gate)
    await ahead.settle()
    // HEAD moves under the files in transit: they stay held, as HEAD still has what they replaced.
    await writeFile(join(dest.share, 'mine.txt'), 'ours\n')
    assert.deepEqual([(await dest.commit('ours'))!.summary.added], [1])
    const later = await editedAgain(source, dest)
    const result = await dest.integrate(later)
    assert.equal(result.mode, 'merge')
    assert.deepEqual(result.conflicts, [])
    assert.equal(await readFile(join(dest.share, 'a.txt'), 'utf8'), 'v2, the peer again\n')
    gate.release()
    await fetching
    assert.equal((await dest.integrate(remote)).mode, 'none')
    await ahead.end()
    assert.deepEqual(await dest.status(), [])
    assert.equal(await dest.commit('nothing of ours'), undefined)
  })

  it('a later head of the same history that lands first replaces a file in transit, with no conflict and no revert', async () => {
    const { source, dest, remote, gate } = await scenario()
    const { ahead, fetching } = await writtenAhead(dest, remote, gate)
    await ahead.settle()
    const later = await editedAgain(source, dest)
    const result = await dest.integrate(later)
    assert.equal(result.mode, 'fast-forward')
    assert.deepEqual(result.conflicts, [])
    assert.deepEqual(result.skipped, [])
    assert.equal(await readFile(join(dest.share, 'a.txt'), 'utf8'), 'v2, the peer again\n')
    gate.release()
    await fetching
    await ahead.end()
    assert.equal((await dest.integrate(remote)).mode, 'none')
    assert.deepEqual(await dest.status(), [])
    assert.equal(await dest.commit('nothing of ours'), undefined)
    assert.equal(await readFile(join(dest.share, 'a.txt'), 'utf8'), 'v2, the peer again\n')
  })

  it('a checkout replaces a file in transit like the version it was written over', async () => {
    const { source, dest, remote, gate } = await scenario()
    const { ahead, fetching } = await writtenAhead(dest, remote, gate)
    await ahead.settle()
    const later = await editedAgain(source, dest)
    const moved = await dest.checkout(later.toString())
    // A file in transit is not a local edit: the checkout replaces it.
    assert.deepEqual(moved.kept, [])
    assert.equal(await readFile(join(dest.share, 'a.txt'), 'utf8'), 'v2, the peer again\n')
    assert.deepEqual(await dest.status(), [])
    gate.release()
    await fetching
    await ahead.end()
  })

  it('leaves alone an edit that kept its size and mtime, and writes no folder for a file it ignores', async () => {
    const { dest, gate, source } = await scenario()
    await writeFile(join(source.share, 'new', 'debug.log'), 'ignored here\n')
    await mkdir(join(source.share, 'logs'))
    await writeFile(join(source.share, 'logs', 'app.log'), 'ignored here too\n')
    const withLogs = (await source.commit('logs'))!.cid
    await writeFile(join(dest.layout.leftDir, 'ignore'), '*.log\n')
    // Same size as 'v0\n', and the mtime put back: only the stat cache can tell.
    const a = join(dest.share, 'a.txt')
    const was = await stat(a)
    await writeFile(a, 'xy\n')
    // Half a millisecond in, as materialize does: seconds as a float must not round it down.
    await utimes(a, was.atime, (Math.floor(was.mtimeMs) + 0.5) / 1000)
    const ahead = await dest.writeAhead(withLogs)
    const fetching = fetchClosure(withLogs, dest.objects, gate, { base: ahead.base, onReady: (c) => ahead.ready(c) })
    await until('the small files are written ahead', () => ahead.files === SMALL + 1)
    gate.release()
    await fetching
    await ahead.settle()
    assert.equal(ahead.files, SMALL + 2, 'the small files and the big one')
    assert.equal(await readFile(a, 'utf8'), 'xy\n')
    await assert.rejects(stat(join(dest.share, 'logs')), { code: 'ENOENT' })
    await assert.rejects(stat(join(dest.share, 'new', 'debug.log')), { code: 'ENOENT' })
    assert.deepEqual((await dest.status()).map((c) => c.path), ['a.txt'])
    const result = await dest.integrate(withLogs)
    await ahead.end()
    assert.deepEqual(result.conflicts.map((c) => c.path), ['a.txt'], 'both versions kept')
    assert.deepEqual(await dest.status(), [])
  })

  it('writes nothing ahead when the head is not a fast-forward: the merge decides', async () => {
    const { dest, remote, gate } = await scenario()
    await writeFile(join(dest.share, 'mine.txt'), 'a commit of our own\n')
    await dest.commit('ours')
    const ahead = await fetchedWithNothingAhead(dest, remote, gate)
    const result = await dest.integrate(remote)
    await ahead.end()
    assert.equal(result.mode, 'merge')
    assert.equal(await readFile(join(dest.share, smallName(0)), 'utf8'), smallText(0))
  })

  it('writes nothing ahead, and integrate refuses, while a checkout cut short is unfinished', async () => {
    const { dest, remote, gate } = await scenario()
    const v0 = (await dest.head())!.toString()
    await writeFile(join(dest.share, 'mine.txt'), 'a commit of our own\n')
    const mine = (await dest.commit('ours'))!.cid.toString()
    await dest.checkout(v0)
    await assert.rejects(dest.checkout(mine, false, { onWrite: () => { throw new Error('cut') } }), /cut/)
    assert.equal((await dest.head())!.toString(), v0, 'HEAD is still where the remote head descends from')
    const ahead = await fetchedWithNothingAhead(dest, remote, gate)
    await assert.rejects(dest.integrate(remote), { code: 'LEFT_CHECKOUT_UNFINISHED' })
    await ahead.end()
    await dest.checkout(mine)
    assert.equal((await dest.integrate(remote)).mode, 'merge')
  })

  it('stops writing ahead once HEAD moves', async () => {
    const { dest, remote, gate } = await scenario()
    const ahead = await dest.writeAhead(remote)
    await writeFile(join(dest.share, 'mine.txt'), 'a commit of our own\n')
    await dest.commit('ours, after the fetch began')
    gate.release()
    await fetchClosure(remote, dest.objects, gate, { base: ahead.base, onReady: (c) => ahead.ready(c) })
    await ahead.settle()
    assert.equal(ahead.files, 0)
    await rm(join(dest.share, 'mine.txt'))
  })
})

describe('small files first on the sending side: a commit can leave big files that must be read for the next one', () => {
  const suite = suiteRepos('left-later-')

  it('commits the rest first, keeps the big files as HEAD has them, and takes them in the next commit', async () => {
    const repo = await suite.repo('later')
    await writeFile(join(repo.share, 'old-big.bin'), seededBytes('old-big', BIG_BYTES))
    await repo.commit('first')
    await writeFile(join(repo.share, 'old-big.bin'), seededBytes('old-big-2', BIG_BYTES))
    await mkdir(join(repo.share, 'fresh'))
    await writeFile(join(repo.share, 'fresh', 'new-big.bin'), seededBytes('new-big', BIG_BYTES))
    await writeFile(join(repo.share, 'note.txt'), 'small\n')
    const asked: string[] = []
    const later = (path: string, size: number): boolean => {
      asked.push(path)
      return size >= LATER_BYTES
    }
    const small = await repo.commit(undefined, { later })
    assert.deepEqual(asked.sort(), ['fresh/new-big.bin', 'note.txt', 'old-big.bin'])
    assert.deepEqual([small!.summary.added, small!.summary.modified], [1, 0], 'note.txt alone, and no empty folder')
    assert.deepEqual((await repo.status()).map((c) => c.path).sort(), ['fresh', 'fresh/new-big.bin', 'old-big.bin'])
    const big = await repo.commit()
    assert.deepEqual([big!.summary.added, big!.summary.modified], [1, 1])
    assert.deepEqual(await repo.status(), [])
  })
})
