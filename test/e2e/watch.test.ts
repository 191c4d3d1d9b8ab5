import { after, afterEach, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, lchown, mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { leftOk, statusChanges } from '../helpers/cli.js'
import { seededBytes, writeCompressibleFile } from '../helpers/data.js'
import { DEADLINE_MS, type LeftProcess, type Peer, type PeerSet, dirSize, killAll, makePeers, sleep, waitForEqual, watch, watchArgs, logIds } from '../helpers/peers.js'

/** This file's port; every peer listens on it, each on its own loopback address. */
const PORT = 27612

/** Log lines that mean a peer's head moved. */
const HEAD_MOVED = /committed|merged|fast-forwarded/

/** Gives `root` and everything below it to `uid`:`gid`. */
async function chownTree(root: string, uid: number, gid: number): Promise<void> {
  await lchown(root, uid, gid)
  for (const name of await readdir(root, { recursive: true })) await lchown(join(root, name), uid, gid)
}

/** Waits until `path` exists (in a share folder being synced into). */
async function waitForFile(path: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS
  for (;;) {
    try {
      await readFile(path)
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
    }
    await sleep(100)
  }
}

/** Waits until the file at `path` holds `text`. */
async function waitForText(path: string, text: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS
  while ((await readFile(path, 'utf8').catch(() => undefined)) !== text) {
    if (Date.now() > deadline) throw new Error(`${path} does not hold ${JSON.stringify(text)}`)
    await sleep(100)
  }
}

/**
 * Waits until no process has logged a head move for `quietMs`. Peers that
 * echoed heads to each other would keep logging and fail at the deadline.
 */
async function waitForQuiet(procs: readonly LeftProcess[], quietMs = 3_000): Promise<number[]> {
  const deadline = Date.now() + DEADLINE_MS
  let counts = procs.map((p) => p.count(HEAD_MOVED))
  let since = Date.now()
  for (;;) {
    await sleep(250)
    const now = procs.map((p) => p.count(HEAD_MOVED))
    if (now.some((n, i) => n !== counts[i])) {
      counts = now
      since = Date.now()
    } else if (Date.now() - since >= quietMs) {
      return counts
    }
    if (Date.now() > deadline) throw new Error(`heads still moving after ${DEADLINE_MS} ms: ${procs.map((p) => p.output()).join('\n')}`)
  }
}

describe('e2e: three peers running left watch', () => {
  let set: PeerSet
  let peers: Peer[]
  before(async () => {
    set = await makePeers(3, PORT)
    peers = set.peers
  })
  afterEach(() => killAll())
  after(() => set.cleanup())

  it('converges through late joins, a kill -9 and restart, a big compressible file and an in-place edit, without echo', async () => {
    const [A, B, C] = peers as [Peer, Peer, Peer]
    const shares = peers.map((p) => p.share)

    // A starts alone and gets a file; B, then C, join and receive it.
    let watchA = await watch(A, watchArgs(A, peers))
    const ten = seededBytes('ten', 10 << 20)
    await writeFile(join(A.share, 'ten.bin'), ten)
    const watchB = await watch(B, watchArgs(B, peers))
    await waitForEqual([A.share, B.share])
    assert.ok((await readFile(join(B.share, 'ten.bin'))).equals(ten))
    const watchC = await watch(C, watchArgs(C, peers))
    await waitForEqual(shares)

    // B gets a big compressible file and a folder of small ones; A dies right after B commits.
    const mark = watchB.stdout.length
    await writeCompressibleFile(join(B.share, 'server.log'), 50 << 20)
    await mkdir(join(B.share, 'small'))
    for (let i = 0; i < 50; i++) await writeFile(join(B.share, `small/file-${String(i).padStart(2, '0')}.txt`), `small file ${i}\n`)
    await watchB.waitFor(/committed/, { from: mark })
    await watchA.kill('SIGKILL')
    const tree = await waitForEqual([B.share, C.share])
    assert.equal(tree.filter((p) => p.path.startsWith('small/')).length, 50)
    assert.ok(tree.some((p) => p.path === 'server.log'))

    // A plain `left watch` remembers --listen and --peers, and catches up.
    watchA = await watch(A)
    assert.match(watchA.stdout, new RegExp(`on 127\\.0\\.0\\.1:${PORT}; peers 127\\.0\\.0\\.2:${PORT}, 127\\.0\\.0\\.3:${PORT}`))
    await waitForEqual(shares)

    // C adds a random file; then its first 0.1% is overwritten in place.
    const size = 20 << 20
    const data = seededBytes('twenty', size)
    await writeFile(join(C.share, 'random.bin'), data)
    await waitForEqual(shares)
    assert.ok((await readFile(join(A.share, 'random.bin'))).equals(data))
    const patch = seededBytes('patch', Math.floor(size / 1000))
    const fh = await open(join(C.share, 'random.bin'), 'r+')
    await fh.write(patch, 0, patch.length, 0)
    await fh.close()
    patch.copy(data, 0)
    await waitForEqual(shares)
    assert.ok((await readFile(join(A.share, 'random.bin'))).equals(data))
    assert.ok((await readFile(join(B.share, 'random.bin'))).equals(data))

    // No echo: once every head agrees, nobody commits, merges or fast-forwards any more.
    const all = [watchA, watchB, watchC]
    await waitForQuiet(all)
    for (const w of all) {
      const stopped = await w.kill('SIGTERM')
      assert.equal(stopped.code, 0, w.output())
    }
    const final = await waitForEqual(shares, 0)
    assert.ok(final.some((p) => p.path === 'random.bin') && final.some((p) => p.path === 'ten.bin'))
    const heads = await Promise.all(peers.map(async (p) => (await logIds(p))[0]))
    assert.equal(new Set(heads).size, 1, `heads: ${heads.join(' ')}`)
    for (const p of peers) assert.equal(await statusChanges(p.dir), 'nothing to commit, share folder clean')
  })

  it('does not sync what .leftignore names, syncs .leftignore itself, and never deletes a path for becoming ignored (item 3)', async () => {
    const [A, B] = peers as [Peer, Peer]
    const watchA = await watch(A, watchArgs(A, [A, B]))
    const watchB = await watch(B, watchArgs(B, [A, B]))
    await writeFile(join(A.share, 'before-the-rule.tmp'), 'synced while not ignored')
    await waitForFile(join(B.share, 'before-the-rule.tmp'))
    await writeFile(join(A.share, '.leftignore'), '*.tmp\nbuild/\n')
    await waitForFile(join(B.share, '.leftignore'))
    // Written before the marker: had they not been ignored, they would travel with it.
    await writeFile(join(A.share, 'scratch.tmp'), 'scratch')
    await mkdir(join(A.share, 'build'))
    await writeFile(join(A.share, 'build/out.o'), 'object')
    await writeFile(join(A.share, 'marker.txt'), 'marker')
    await waitForFile(join(B.share, 'marker.txt'))
    await waitForQuiet([watchA, watchB], 1_000)
    const names = await readdir(B.share)
    assert.ok(!names.includes('scratch.tmp') && !names.includes('build'), `B has ${names.join(', ')}`)
    assert.equal(await readFile(join(B.share, '.leftignore'), 'utf8'), '*.tmp\nbuild/\n')
    // The ignore rules hold on the receiving side too.
    await writeFile(join(B.share, 'local-only.tmp'), 'b')
    await writeFile(join(B.share, 'marker2.txt'), 'marker2')
    await waitForFile(join(A.share, 'marker2.txt'))
    await assert.rejects(readFile(join(A.share, 'local-only.tmp')), { code: 'ENOENT' })
    assert.doesNotMatch(watchA.stdout + watchB.stdout, /scratch\.tmp|out\.o|local-only|deleted by/)
    for (const share of [A.share, B.share]) assert.equal(await readFile(join(share, 'before-the-rule.tmp'), 'utf8'), 'synced while not ignored')
    // An editor's backup name syncs like any other, and so does a change of
    // mode alone: chokidar passes on neither (the watch takes them from its
    // raw events).
    await writeFile(join(A.share, 'notes.txt~'), 'backup')
    await waitForText(join(B.share, 'notes.txt~'), 'backup')
    await chmod(join(A.share, 'marker2.txt'), 0o755)
    for (const deadline = Date.now() + DEADLINE_MS; ((await stat(join(B.share, 'marker2.txt'))).mode & 0o100) === 0; await sleep(100)) {
      assert.ok(Date.now() < deadline, 'the mode change did not reach B')
    }
    await rm(join(A.share, 'notes.txt~'))
    // And a folder of such a name is watched inside like any other.
    await mkdir(join(A.share, 'old~'))
    await writeFile(join(A.share, 'old~/draft.txt'), 'first draft')
    await waitForText(join(B.share, 'old~/draft.txt'), 'first draft')
    await writeFile(join(A.share, 'old~/draft.txt'), 'second draft')
    await waitForText(join(B.share, 'old~/draft.txt'), 'second draft')
    await rm(join(A.share, 'old~'), { recursive: true })
    // Item 5: an incoming deletion is a log line of its own, naming the path.
    await rm(join(A.share, 'marker.txt'))
    await watchB.waitFor(/deleted marker\.txt \(deleted by [0-9a-f]{16}\)/)
    // A folder no longer ignored is taken in, and watched from then on:
    // the watch looks only where its watcher saw changes, and the watcher
    // did not watch the folder while it was ignored.
    await writeFile(join(A.share, '.leftignore'), '*.tmp\n')
    await waitForText(join(B.share, 'build/out.o'), 'object')
    await writeFile(join(A.share, 'build/out.o'), 'object, built again')
    await waitForText(join(B.share, 'build/out.o'), 'object, built again')
    await rm(join(A.share, 'build'), { recursive: true })
    // Ignored, so removing it commits nothing; the next test compares whole folders.
    await rm(join(A.share, 'scratch.tmp'))
    await rm(join(B.share, 'local-only.tmp'))
    for (const share of [A.share, B.share]) await rm(join(share, 'before-the-rule.tmp'))
  })

  it('issue 9: small files are committed before a big one beside them, and written on the other peer while the big one moves, with no echo', async () => {
    const [A, B] = peers as [Peer, Peer]
    const small = Array.from({ length: 15 }, (_, i) => `s-${String(i).padStart(2, '0')}.txt`)
    /** A folder of one big file and the small ones, made beside A's share and moved in at once. */
    const moveIn = async (name: string, big: Buffer): Promise<void> => {
      const staging = join(A.dir, 'staging')
      await mkdir(staging)
      // First in path order: the fetch still asks for it last.
      await writeFile(join(staging, '0-big.bin'), big)
      for (const s of small) await writeFile(join(staging, s), `${name}/${s}\n`)
      await rename(staging, join(A.share, name))
    }
    const smallOnB = async (name: string, proc: LeftProcess): Promise<void> => {
      const deadline = Date.now() + DEADLINE_MS
      for (;;) {
        const here = await readdir(join(B.share, name)).catch(() => [] as string[])
        if (small.every((s) => here.includes(s))) return
        assert.ok(Date.now() < deadline, `small files never reached B\n${proc.output()}`)
        await sleep(20)
      }
    }

    // One commit holding both, made before A's watch starts: B writes the
    // small files ahead, while the big one still moves.
    const first = seededBytes('ahead-big', 256 << 20)
    await moveIn('one', first)
    await leftOk(A.dir, ['commit', '-m', 'both at once'])
    const watchB = await watch(B, watchArgs(B, [A, B]))
    const mark = watchB.stdout.length
    const watchA = await watch(A, watchArgs(A, [A, B]))
    await smallOnB('one', watchB)
    const status = JSON.parse(await leftOk(B.dir, ['status', '--json'])) as { synchronizer: { peers: Array<{ transfer: { bytes: number } | null }> } }
    assert.ok(status.synchronizer.peers.some((p) => p.transfer !== null), `B had finished its fetch when the small files were in\n${JSON.stringify(status)}`)
    await waitForEqual([A.share, B.share])
    assert.ok((await readFile(join(B.share, 'one', '0-big.bin'))).equals(first))

    // Moved in while A watches: A commits the small files first, then the big one.
    const markA = watchA.stdout.length
    await moveIn('two', seededBytes('ahead-big-2', 64 << 20))
    await smallOnB('two', watchB)
    await waitForEqual([A.share, B.share])
    await waitForQuiet([watchA, watchB], 1_000)
    const commits = watchA.stdout.slice(markA).split('\n').filter((l) => /committed/.test(l))
    assert.equal(commits.length, 2, commits.join('\n'))
    assert.match(commits[0]!, /: 15 added, 0 modified/)
    assert.match(commits[1]!, /: 1 added, 0 modified/)

    // No echo: B committed and merged nothing of its own; it fast-forwarded.
    const since = watchB.stdout.slice(mark)
    assert.doesNotMatch(since, /committed|merged/, since)
    assert.match(since, /fast-forwarded to/)
    for (const p of [A, B]) assert.equal(await statusChanges(p.dir), 'nothing to commit, share folder clean')
    for (const name of ['one', 'two']) await rm(join(A.share, name), { recursive: true })
    await waitForEqual([A.share, B.share])
  })

  it('shuts down cleanly on SIGTERM, even mid-transfer, and the store opens afterwards', async (t) => {
    const [A, B] = peers as [Peer, Peer]
    const watchA = await watch(A, watchArgs(A, [A, B]))
    let watchB = await watch(B, watchArgs(B, [A, B]))
    await waitForEqual([A.share, B.share])
    const big = seededBytes('sigterm', 40 << 20)
    const storeB = join(B.dir, '.left/store')
    const start = await dirSize(storeB)
    await writeFile(join(A.share, 'big.bin'), big)
    // Stop B once it has visibly started receiving.
    const deadline = Date.now() + DEADLINE_MS
    while ((await dirSize(storeB)) < start + (4 << 20) && watchB.alive && Date.now() < deadline) await sleep(5)
    const stoppedB = await watchB.kill('SIGTERM')
    assert.equal(stoppedB.code, 0, watchB.output())
    assert.match(watchB.stdout, /SIGTERM: shutting down/)
    assert.equal(watchB.stderr, '')
    assert.match(await leftOk(B.dir, ['fsck']), /: ok$/)
    await statusChanges(B.dir)
    const midway = await readFile(join(B.share, 'big.bin')).then(() => false, () => true)
    t.diagnostic(midway ? 'B was stopped mid-transfer' : 'B had the whole file before it was stopped')

    // B picks up where it stopped.
    watchB = await watch(B)
    await waitForEqual([A.share, B.share])
    assert.ok((await readFile(join(B.share, 'big.bin'))).equals(big))
    for (const w of [watchA, watchB]) assert.equal((await w.kill('SIGTERM')).code, 0, w.output())
    assert.equal(await statusChanges(A.dir), 'nothing to commit, share folder clean')
    assert.equal(await statusChanges(B.dir), 'nothing to commit, share folder clean')
    assert.equal((await logIds(A))[0], (await logIds(B))[0])
  })

  it('item 14: skips a file it cannot read, says so once, syncs the rest, and syncs the file once readable', { skip: process.getuid?.() === undefined }, async () => {
    const [A, B] = [peers[0]!, peers[1]!]
    const locked = join(A.share, 'locked-for-now.txt')
    await writeFile(locked, 'readable later')
    await chmod(locked, 0o000)
    await writeFile(join(A.share, 'readable-now.txt'), 'here at once')
    // Root reads anything: run A as nobody, owning its folder.
    const asUser = process.getuid!() === 0 ? { uid: 65534, gid: 65534 } : undefined
    if (asUser !== undefined) {
      await chmod(dirname(A.dir), 0o755) // the temp root is 0700: let nobody through
      await chownTree(A.dir, asUser.uid, asUser.gid)
    }
    const a = await watch(A, watchArgs(A, [A, B]), asUser)
    await watch(B, watchArgs(B, [A, B]))
    await a.waitFor(/skipped what cannot be read, keeping its last committed version: locked-for-now\.txt \(cannot be read \(EACCES\)\)/)
    // One unreadable file does not hold up the rest of the folder.
    await waitForFile(join(B.share, 'readable-now.txt'))
    await sleep(2_000)
    assert.equal(a.count(/skipped what cannot be read/), 1, `said once, looked again quietly:\n${a.output()}`)
    await assert.rejects(readFile(join(B.share, 'locked-for-now.txt')), { code: 'ENOENT' })
    await chmod(locked, 0o644)
    await waitForFile(join(B.share, 'locked-for-now.txt'))
    assert.equal(await readFile(join(B.share, 'locked-for-now.txt'), 'utf8'), 'readable later')
  })

  it('commits no deletion when its share folder is moved away and an empty one made in its place, and goes on once it is back', async () => {
    const [A, B] = [peers[0]!, peers[1]!]
    await writeFile(join(A.share, 'kept-on-b.txt'), 'still here')
    const a = await watch(A, watchArgs(A, [A, B]))
    const b = await watch(B, watchArgs(B, [A, B]))
    await waitForText(join(B.share, 'kept-on-b.txt'), 'still here')
    await waitForQuiet([a, b], 1_000)
    const fromA = /merged|fast-forwarded/
    const moves = b.count(fromA)
    const away = `${A.share}-away`
    const mark = a.stdout.length
    await rename(A.share, away)
    await mkdir(A.share)
    await a.waitFor(/cannot commit: the share folder .* was moved, deleted or replaced since LEFT opened it/)
    // Nor does A take B's changes into the folder now at its share's path.
    await writeFile(join(B.share, 'from-b.txt'), 'from b')
    await a.waitFor(/peer [0-9a-f]{16}: the share folder .* was moved, deleted or replaced/)
    assert.deepEqual(await readdir(A.share), [])
    assert.doesNotMatch(a.stdout.slice(mark), /[1-9]\d* deleted/)
    assert.equal(b.count(fromA), moves, `B takes nothing from A:\n${b.output()}`)
    assert.equal(await readFile(join(B.share, 'kept-on-b.txt'), 'utf8'), 'still here')
    await rm(A.share, { recursive: true })
    await rename(away, A.share)
    await writeFile(join(A.share, 'after-return.txt'), 'back')
    await waitForText(join(B.share, 'after-return.txt'), 'back')
    await waitForText(join(A.share, 'from-b.txt'), 'from b')
    assert.equal(await readFile(join(B.share, 'kept-on-b.txt'), 'utf8'), 'still here')
  })
})
