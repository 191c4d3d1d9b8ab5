/**
 * Issue 10: history everywhere, content where it is needed. A new peer gets
 * every commit and tree but only the content of the head; old content comes
 * on demand, from the peer named with --from or through the running
 * synchronizer's peers, and one clear line says when nobody has it.
 */
import { after, afterEach, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { assertOneLineError, commitOk, left, leftOk } from '../helpers/cli.js'
import { seededBytes } from '../helpers/data.js'
import { type Peer, type PeerSet, killAll, logIds, makePeers, serve, syncReceived, watch } from '../helpers/peers.js'

/** This file's port; every peer listens on it, each on its own loopback address. */
const PORT = 27615
const MiB = 1024 * 1024

describe('e2e: a new peer fetches all history but only the content it writes out', () => {
  let set: PeerSet
  let A: Peer
  let B: Peer
  let C: Peer
  /** A's commits, newest first: the 4 MiB folder, the deletion, the 48 MiB file. */
  let history: string[]
  const big = seededBytes('big', 48 * MiB)
  before(async () => {
    set = await makePeers(3, PORT)
    ;[A, B, C] = set.peers as [Peer, Peer, Peer]
    await writeFile(join(A.share, 'big.bin'), big)
    await commitOk(A.dir, ['-m', 'a big file'])
    await rm(join(A.share, 'big.bin'))
    await commitOk(A.dir, ['-m', 'delete it'])
    await mkdir(join(A.share, 'sub'))
    for (let i = 0; i < 4; i++) await writeFile(join(A.share, 'sub', `f${i}.bin`), seededBytes(`f${i}`, MiB))
    await commitOk(A.dir, ['-m', 'four files'])
    history = await logIds(A)
    assert.equal(history.length, 3)
  })
  afterEach(() => killAll())
  after(() => set.cleanup())

  it('receives less than 16 MiB for a 4 MiB folder whose history held a 48 MiB file, and shows the whole history', async () => {
    await serve(A)
    const out = await leftOk(B.dir, ['sync', A.address])
    const received = syncReceived(out)
    assert.ok(received > 4 * MiB && received < 16 * MiB, `received ${received} bytes:\n${out}`)
    assert.deepEqual(await logIds(B), history)
    assert.deepEqual((await readdir(join(B.share, 'sub'))).sort(), ['f0.bin', 'f1.bin', 'f2.bin', 'f3.bin'])
    // fsck tells content never fetched from content missing: B is whole.
    const fsck = await leftOk(B.dir, ['fsck'])
    assert.match(fsck, /^\d+ chunks \(48\.0 MiB\) of old versions not here: never fetched, or forgotten/m)
    assert.match(fsck, /: ok$/)
    const stats = JSON.parse(await leftOk(B.dir, ['stats', '--json'])) as { commits: number; thinCommits: number; keptBytes: number; referencedBytes: number }
    assert.deepEqual([stats.commits, stats.thinCommits, stats.keptBytes, stats.referencedBytes], [3, 2, 4 * MiB, 52 * MiB])
    // `left log --stat` needs no content: it shows the old file with its size.
    assert.match(await leftOk(B.dir, ['log', '--stat', '--', 'big.bin']), /big\.bin/)
    // `left versions` lists every version, and says which need a peer.
    const versions = JSON.parse(await leftOk(B.dir, ['versions', '--json', 'big.bin'])) as Array<{ id: string; here: boolean | null; size: number | null }>
    assert.deepEqual(versions.map((v) => [v.id, v.here, v.size]), [[history[1], null, null], [history[2], false, 48 * MiB]])
    assert.match(await leftOk(B.dir, ['versions', 'big.bin']), /48\.0 MiB .*content not here: restore fetches it from a peer/)
  })

  it('says in one line that old content is not here when no peer is at hand, and changes nothing', async () => {
    const r = await left(B.dir, ['restore', '-s', history[2]!, 'big.bin'])
    assertOneLineError(r, /^left: the content of big\.bin is not here \(never fetched, or forgotten\) and no peer is at hand .*--from HOST\[:PORT\]$/)
    await assert.rejects(readFile(join(B.share, 'big.bin')), { code: 'ENOENT' })
    const checkout = await left(B.dir, ['checkout', history[2]!])
    assertOneLineError(checkout, /content of big\.bin is not here/)
    assert.equal((await logIds(B))[0], history[0], 'HEAD did not move')
    // A peer that lacks it too (C has no commits at all) is named.
    await serve(C)
    const asked = await left(B.dir, ['restore', '-s', history[2]!, '--from', C.address, 'big.bin'])
    assertOneLineError(asked, new RegExp(`content of big\\.bin is not here .* and ${C.address.replaceAll('.', '\\.')} does not have it either$`))
    await assert.rejects(readFile(join(B.share, 'big.bin')), { code: 'ENOENT' })
  })

  it('restores an old version with --from, fetching only that content', async () => {
    await serve(A)
    await leftOk(B.dir, ['restore', '-s', history[2]!, '--from', A.address, 'big.bin'])
    assert.ok(big.equals(await readFile(join(B.share, 'big.bin'))))
    assert.match(await leftOk(B.dir, ['fsck']), /: ok$/)
    const versions = JSON.parse(await leftOk(B.dir, ['versions', '--json', 'big.bin'])) as Array<{ here: boolean | null }>
    assert.equal(versions[1]!.here, true, 'the fetched content is here now')
    await rm(join(B.share, 'big.bin'))
  })

  it('checks out an old version through the running synchronizer, which asks its peers', async () => {
    await serve(A)
    const out = await leftOk(C.dir, ['sync', A.address])
    assert.match(out, /in sync/)
    const daemon = await watch(C, ['--listen', C.address, '--peers', A.address])
    await daemon.waitFor(/peer \S+ online/)
    await leftOk(C.dir, ['checkout', history[2]!])
    assert.ok(big.equals(await readFile(join(C.share, 'big.bin'))))
    // Its content is HEAD's now, so it is kept: nothing of it is absent.
    assert.doesNotMatch(await leftOk(C.dir, ['fsck']), /48\.0 MiB/)
  })
})
