import { after, afterEach, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdir, readFile, readdir, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { RAW, Store } from '../../src/index.js'
import { assertOneLineError, commitOk, left, leftOk, tempDir, statusChanges } from '../helpers/cli.js'
import { seededBytes } from '../helpers/data.js'
import { type Peer, type PeerSet, dirSize, killAll, makePeers, serve, sleep, spawnLeft, logIds, syncReceived } from '../helpers/peers.js'
import { type PathInfo, describeTree } from '../helpers/tree.js'

/** This file's port; every peer listens on it, each on its own loopback address. */
const PORT = 27611

/** Asserts that every peer's share folder is byte-identical to the first's, mtimes included; returns it. */
async function assertSameFolders(peers: readonly Peer[]): Promise<PathInfo[]> {
  const [first, ...rest] = await Promise.all(peers.map((p) => describeTree(p.share, { mtimes: true })))
  rest.forEach((t, i) => assert.deepEqual(t, first, `${peers[i + 1]!.name} differs from ${peers[0]!.name}`))
  return first!
}

/** Total bytes of the chunks (raw objects) in `peer`'s store; the store must not be in use. */
async function rawBytes(peer: Peer): Promise<number> {
  const store = await Store.open(join(peer.dir, '.left/store'))
  try {
    let total = 0
    for await (const cid of store.objectCids()) if (cid.code === RAW) total += (await store.get(cid))?.length ?? 0
    return total
  } finally {
    await store.close()
  }
}

function entry(tree: readonly PathInfo[], path: string): PathInfo | undefined {
  return tree.find((p) => p.path === path)
}

describe('e2e: left serve and left sync between three peers', () => {
  let set: PeerSet
  let A: Peer
  let B: Peer
  let C: Peer
  before(async () => {
    set = await makePeers(3, PORT)
    ;[A, B, C] = set.peers as [Peer, Peer, Peer]
  })
  afterEach(() => killAll())
  after(() => set.cleanup())

  it('propagates adds, modifies and deletes of files, hidden paths, empty dirs and files, exec bits and links', async () => {
    await mkdir(join(A.share, 'docs/deep'), { recursive: true })
    await mkdir(join(A.share, '.hidden-dir'))
    await mkdir(join(A.share, 'empty-dir'))
    await writeFile(join(A.share, 'readme.txt'), 'hello\n')
    await writeFile(join(A.share, '.dotfile'), 'secret')
    await writeFile(join(A.share, '.hidden-dir/inside'), 'hidden content')
    await writeFile(join(A.share, 'docs/deep/data.bin'), seededBytes('data', 700_000))
    await writeFile(join(A.share, 'empty-file'), '')
    await writeFile(join(A.share, 'run.sh'), '#!/bin/sh\necho hi\n')
    await chmod(join(A.share, 'run.sh'), 0o755)
    await symlink('docs/deep/data.bin', join(A.share, 'link-to-data'))
    const server = await serve(A)

    // A serves what it has (it commits on connect); B and C start empty.
    await leftOk(B.dir, ['sync', A.address])
    await leftOk(C.dir, ['sync', A.address])
    let tree = await assertSameFolders([A, B, C])
    assert.deepEqual(entry(tree, '.hidden-dir/inside')?.type, 'file')
    assert.deepEqual(entry(tree, 'empty-dir'), { path: 'empty-dir', type: 'dir' })
    assert.equal(entry(tree, 'empty-file')?.sha256, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
    assert.equal(entry(tree, 'run.sh')?.exec, true)
    assert.equal(entry(tree, 'readme.txt')?.exec, false)
    assert.equal(entry(tree, 'link-to-data')?.target, 'docs/deep/data.bin')
    assert.deepEqual(await readFile(join(C.share, 'docs/deep/data.bin')), seededBytes('data', 700_000))

    // B changes one of everything and pushes it to A; C pulls it from A.
    await writeFile(join(B.share, 'readme.txt'), 'hello from B\n')
    await rm(join(B.share, '.dotfile'))
    await rm(join(B.share, 'empty-dir'), { recursive: true })
    await mkdir(join(B.share, '.new-empty'))
    await chmod(join(B.share, 'run.sh'), 0o644)
    await writeFile(join(B.share, 'empty-file'), 'not empty any more')
    await unlink(join(B.share, 'link-to-data'))
    await symlink('readme.txt', join(B.share, 'link-to-data'))
    await writeFile(join(B.share, 'docs/new.txt'), 'new')
    await leftOk(B.dir, ['sync', A.address])
    await leftOk(C.dir, ['sync', A.address])
    tree = await assertSameFolders([A, B, C])
    assert.equal(entry(tree, '.dotfile'), undefined)
    assert.equal(entry(tree, 'empty-dir'), undefined)
    assert.deepEqual(entry(tree, '.new-empty'), { path: '.new-empty', type: 'dir' })
    assert.equal(entry(tree, 'run.sh')?.exec, false)
    assert.equal(entry(tree, 'link-to-data')?.target, 'readme.txt')
    assert.equal(await readFile(join(C.share, 'readme.txt'), 'utf8'), 'hello from B\n')
    assert.equal(await readFile(join(A.share, 'empty-file'), 'utf8'), 'not empty any more')

    // An edit on the serving side is committed when a peer connects, and travels too.
    await rm(join(A.share, '.hidden-dir'), { recursive: true })
    await writeFile(join(A.share, 'docs/deep/data.bin'), seededBytes('data2', 500_000))
    await leftOk(C.dir, ['sync', A.address])
    await leftOk(B.dir, ['sync', A.address])
    tree = await assertSameFolders([A, B, C])
    assert.equal(entry(tree, '.hidden-dir'), undefined)
    assert.deepEqual(await readFile(join(B.share, 'docs/deep/data.bin')), seededBytes('data2', 500_000))

    assert.equal((await server.kill('SIGTERM')).code, 0, server.output())
    const head = (await logIds(A))[0]
    assert.equal((await logIds(B))[0], head)
    assert.equal((await logIds(C))[0], head)
    assert.equal(await statusChanges(C.dir), 'nothing to commit, share folder clean')
  })

  it('keeps both versions of a file edited on two peers, and a modification over a deletion', async () => {
    // A common starting point on all three.
    await writeFile(join(A.share, 'contested.txt'), 'base\n')
    await writeFile(join(A.share, 'mod-on-b.txt'), 'base\n')
    await writeFile(join(A.share, 'mod-on-c.txt'), 'base\n')
    let server = await serve(A)
    await leftOk(B.dir, ['sync', A.address])
    await leftOk(C.dir, ['sync', A.address])
    await server.kill('SIGTERM')
    await assertSameFolders([A, B, C])

    // Concurrent edits, each committed on its own peer.
    await writeFile(join(B.share, 'contested.txt'), 'version of B\n')
    await writeFile(join(B.share, 'mod-on-b.txt'), 'modified on B\n')
    await rm(join(B.share, 'mod-on-c.txt'))
    await writeFile(join(C.share, 'contested.txt'), 'version of C\n')
    await rm(join(C.share, 'mod-on-b.txt'))
    await writeFile(join(C.share, 'mod-on-c.txt'), 'modified on C\n')
    const fromB = await commitOk(B.dir)
    const fromC = await commitOk(C.dir)

    // One sync, both ways: C fetches and merges B's commit, B fetches and takes the merge.
    server = await serve(B)
    // In sync, but with a conflict copy to look at: exit 8, and a line that says so (issue 10).
    const synced = await left(C.dir, ['sync', B.address])
    assert.equal(synced.code, 8, synced.stderr)
    assert.match(synced.stdout, /in sync at /)
    assert.match(synced.stderr, /^left: kept both versions of 1 file edited on both sides; the conflict copies are in the share folder$/m)
    assert.equal((await server.kill('SIGTERM')).code, 0, server.output())
    const logB = await logIds(B)
    const logC = await logIds(C)
    assert.equal(logB[0], logC[0], 'B and C are at the same head')
    assert.ok(logC.includes(fromB) && logC.includes(fromC), 'both sides\' commits are in the history')
    const merge = JSON.parse(await leftOk(C.dir, ['log', '-n', '1', '--json']))[0]
    assert.deepEqual([...merge.parents].sort(), [fromB, fromC].sort())
    // Revisions name the merge's parents as git does: ^1 and ^2, ~1 the first.
    const parentsById: string[] = []
    for (const rev of ['HEAD^1', 'HEAD^2', 'HEAD~1']) parentsById.push(JSON.parse(await leftOk(C.dir, ['log', rev, '-n', '1', '--json']))[0].id)
    assert.deepEqual(parentsById, [merge.parents[0], merge.parents[1], merge.parents[0]])
    // A merge shows its parents, and its changes against each (issue 10).
    assert.deepEqual(merge.againstParents.map((p: { parent: string }) => p.parent), merge.parents)
    const shown = (await leftOk(C.dir, ['log', '-n', '1'])).split('\n')
    const [p1, p2] = await Promise.all(merge.parents.map(async (id: string) => (await leftOk(C.dir, ['log', '--oneline', '-n', '1', id])).split(' ')[0]))
    assert.equal(shown[1], `Merge:  ${p1} ${p2}`)
    assert.deepEqual(shown.filter((l) => l.startsWith('Change: ')).map((l) => l.split(':')[1]), [` against ${p1}`, ` against ${p2}`])
    const graph = (await leftOk(C.dir, ['log', '--graph', '--oneline', '-n', '3'])).split('\n')
    assert.deepEqual(graph.slice(0, 2).map((l) => l.slice(0, 2)), ['* ', '|\\'], `the merge opens a second line:\n${graph.join('\n')}`)
    assert.deepEqual(graph.slice(2, 4).map((l) => l.replace(/[a-z2-7]{8,} .*$/, '').trim()).sort(), ['* |', '| *'])
    await assertSameFolders([B, C])

    // A catches up from B and ends identical too.
    server = await serve(B)
    await leftOk(A.dir, ['sync', B.address])
    await server.kill('SIGTERM')
    await assertSameFolders([A, B, C])
    assert.equal((await logIds(A))[0], logC[0])

    const names = (await readdir(C.share)).filter((n) => n.startsWith('contested'))
    const copies = names.filter((n) => /\.sync-conflict-/.test(n))
    assert.equal(copies.length, 1, `names: ${names.join(', ')}`)
    assert.match(copies[0]!, /^contested\.sync-conflict-.+\.txt$/)
    assert.ok(names.includes('contested.txt'))
    const versions = await Promise.all(['contested.txt', copies[0]!].map((n) => readFile(join(C.share, n), 'utf8')))
    assert.deepEqual(versions.sort(), ['version of B\n', 'version of C\n'])
    assert.equal(await readFile(join(A.share, 'mod-on-b.txt'), 'utf8'), 'modified on B\n')
    assert.equal(await readFile(join(A.share, 'mod-on-c.txt'), 'utf8'), 'modified on C\n')
    // Every version stays reachable: each side's edit can be brought back from its commit.
    assert.ok((await logIds(A)).includes(fromB) && (await logIds(A)).includes(fromC))
    for (const [rev, text] of [[fromB, 'version of B\n'], [fromC, 'version of C\n']] as const) {
      await leftOk(A.dir, ['restore', 'contested.txt', '--source', rev])
      assert.equal(await readFile(join(A.share, 'contested.txt'), 'utf8'), text)
    }
    await leftOk(A.dir, ['restore', 'contested.txt'])
    assert.equal(await statusChanges(A.dir), 'nothing to commit, share folder clean')
    assert.match(await leftOk(A.dir, ['fsck']), /: ok$/)
  })

  it('resumes a transfer killed with SIGKILL, fetching only what is missing', async (t) => {
    const size = 60 << 20
    const bigData = seededBytes('resume', size)
    await writeFile(join(A.share, 'big.bin'), bigData)
    await leftOk(A.dir, ['commit', '-m', 'big file'])
    const headBefore = (await logIds(B))[0]
    const chunkBytesBefore = await rawBytes(B)
    const server = await serve(A)
    try {
      // Kill B's sync once its store directory has grown by more than half the file.
      const storeDir = join(B.dir, '.left/store')
      const start = await dirSize(storeDir)
      const first = spawnLeft(B.dir, ['sync', A.address])
      while ((await dirSize(storeDir)) < start + size * 0.6 && first.alive) await sleep(5)
      const killedMidway = first.alive
      await first.kill('SIGKILL')
      assert.ok(killedMidway, `the sync finished before it could be killed\n${first.output()}`)

      // Nothing half-done is visible: HEAD did not move, the store is sound, the file is not there.
      assert.equal((await logIds(B))[0], headBefore)
      assert.match(await leftOk(B.dir, ['fsck']), /: ok$/)
      await assert.rejects(readFile(join(B.share, 'big.bin')), { code: 'ENOENT' })
      // What the killed sync kept: chunks of the file (the data is random, so they are all new).
      const kept = (await rawBytes(B)) - chunkBytesBefore
      assert.ok(kept > size / 5 && kept < size, `the killed sync kept ${kept} bytes of chunks`)

      const out = await leftOk(B.dir, ['sync', A.address])
      const received = syncReceived(out)
      t.diagnostic(`the killed sync kept ${kept} bytes; the resumed one received ${received} bytes of a ${size}-byte file`)
      // Random data does not compress: the resumed sync receives the rest, plus framing and tree nodes, and no more.
      assert.ok(received >= size - kept && received < (size - kept) * 1.05 + (1 << 20), `the resumed sync received ${received} bytes where ${size - kept} were missing:\n${out}`)
      assert.ok(received < size * 0.85)
      assert.ok((await readFile(join(B.share, 'big.bin'))).equals(bigData))
      await assertSameFolders([A, B])
      assert.match(await leftOk(B.dir, ['fsck']), /: ok$/)
    } finally {
      await server.kill('SIGTERM')
    }
  })

  it('brings a peer that was offline through several commits up to date', async () => {
    const server = await serve(A)
    const made: string[] = []
    try {
      for (let i = 1; i <= 3; i++) {
        await writeFile(join(B.share, `while-c-was-away-${i}.txt`), `commit ${i}\n`)
        if (i === 2) await rm(join(B.share, 'big.bin'))
        made.push(await commitOk(B.dir, ['-m', `away ${i}`]))
        await leftOk(B.dir, ['sync', A.address])
        // A changes things between B's syncs; serve commits them when B connects.
        await writeFile(join(A.share, 'from-a.txt'), `A, round ${i}\n`)
      }
      await leftOk(B.dir, ['sync', A.address])
      await leftOk(C.dir, ['sync', A.address])
    } finally {
      await server.kill('SIGTERM')
    }
    const tree = await assertSameFolders([A, B, C])
    assert.equal(entry(tree, 'big.bin'), undefined)
    assert.equal(await readFile(join(C.share, 'from-a.txt'), 'utf8'), 'A, round 3\n')
    const logC = await logIds(C)
    for (const id of made) assert.ok(logC.includes(id), `C lacks ${id}`)
    assert.equal(logC[0], (await logIds(A))[0])
    assert.equal(logC[0], (await logIds(B))[0])
  })

  it('issue 8 item 10: commits a file 2,000 folders deep, shows it in status and log, and syncs it to the others', async () => {
    const deep = Array.from({ length: 2000 }, () => 'd').join('/')
    await mkdir(join(A.share, deep), { recursive: true })
    await writeFile(join(A.share, deep, 'bottom.txt'), 'at the bottom')
    assert.match(await statusChanges(A.dir), /^A d\/d\/.*\/d\/bottom\.txt$/m)
    await leftOk(A.dir, ['commit', '-m', 'deep'])
    assert.match(await leftOk(A.dir, ['log', '-n', '1']), /Change: 1 added, 0 modified, 0 deleted/)
    const server = await serve(A)
    try {
      await leftOk(B.dir, ['sync', A.address])
      await leftOk(C.dir, ['sync', A.address])
    } finally {
      await server.kill('SIGTERM')
    }
    for (const p of [B, C]) assert.equal(await readFile(join(p.share, deep, 'bottom.txt'), 'utf8'), 'at the bottom')
    assert.match(await leftOk(C.dir, ['fsck']), /: ok$/)
    await rm(join(A.share, 'd'), { recursive: true })
    await leftOk(A.dir, ['commit', '-m', 'shallow again'])
  })

  it('refuses a peer with another key in one line and keeps serving; bad addresses fail in one line', async () => {
    const { dir: stranger, cleanup } = await tempDir('left-e2e-stranger-')
    const server = await serve(A)
    try {
      await leftOk(stranger, ['init'])
      await writeFile(join(stranger, 'share/intruder.txt'), 'should never arrive')
      const refused = await left(stranger, ['sync', A.address])
      assertOneLineError(refused, /key/)
      assert.equal(refused.code, 6, 'authentication has its own exit code')
      await server.waitFor(/refused .*key/)
      assert.ok(server.alive)
      await assert.rejects(readFile(join(A.share, 'intruder.txt')), { code: 'ENOENT' })

      // The server still serves peers that hold the key.
      await writeFile(join(B.share, 'after-stranger.txt'), 'still works')
      assert.match(await leftOk(B.dir, ['sync', A.address]), /in sync at [a-z2-7]{8,}/)
      assert.equal(await readFile(join(A.share, 'after-stranger.txt'), 'utf8'), 'still works')

      const unreachable = await left(B.dir, ['sync', `127.0.0.3:${PORT}`])
      assertOneLineError(unreachable, new RegExp(`cannot reach peer 127\\.0\\.0\\.3:${PORT}`))
      assert.equal(unreachable.code, 5, 'unreachable has its own exit code')
      for (const bad of ['127.0.0.1:99999', '127.0.0.1:port', '300.1.1.1', '::1']) {
        const r = await left(B.dir, ['sync', bad])
        assertOneLineError(r, /invalid peer address/)
        assert.equal(r.code, 2)
      }
      // Listening where another peer already listens is one line too.
      assertOneLineError(await left(B.dir, ['serve', '--listen', A.address]), /EADDRINUSE/)
    } finally {
      await server.kill('SIGTERM')
      await cleanup()
    }
  })

  it('syncs with several peers in one command, and reports each peer that failed', async () => {
    const serverA = await serve(A)
    const serverB = await serve(B)
    try {
      await writeFile(join(A.share, 'only-a.txt'), 'a')
      await writeFile(join(B.share, 'only-b.txt'), 'b')
      await writeFile(join(C.share, 'only-c.txt'), 'c')
      assert.match(await leftOk(C.dir, ['sync', A.address, B.address]), /in sync at [a-z2-7]{8,}/)
      for (const name of ['only-a.txt', 'only-b.txt', 'only-c.txt']) await readFile(join(C.share, name))
      await readFile(join(A.share, 'only-c.txt'))
      await readFile(join(B.share, 'only-c.txt'))
      // A second round brings A what B had, so all three agree.
      await leftOk(C.dir, ['sync', A.address, B.address])
      await assertSameFolders([A, B, C])

      // A good peer among bad ones still gets synced; every failure is named.
      await writeFile(join(C.share, 'partial.txt'), 'p')
      const one = await left(C.dir, ['sync', A.address, `127.0.0.5:${PORT}`])
      assertOneLineError(one, /127\.0\.0\.5/)
      assert.equal(await readFile(join(A.share, 'partial.txt'), 'utf8'), 'p')
      const two = await left(C.dir, ['sync', `127.0.0.5:${PORT}`, `127.0.0.6:${PORT}`])
      assert.equal(two.code, 5, 'every peer unreachable: the unreachable exit code')
      assert.deepEqual(two.stderr.trim().split('\n').map((l) => /127\.0\.0\.[56]|2 peers/.exec(l)?.[0]), ['127.0.0.5', '127.0.0.6', '2 peers'])
    } finally {
      await serverA.kill('SIGTERM')
      await serverB.kill('SIGTERM')
    }
  })
})
