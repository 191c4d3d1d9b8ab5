/**
 * Issue 12: directories of any size and paths of any depth sync. A
 * directory of 20,000 files is a tree of shards, so a one-file change in it
 * sends a few small nodes, not the whole listing; a file 2,000 directories
 * deep commits, syncs and is written out.
 */
import { after, afterEach, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { RECEIVED_LISTED } from '../../src/node/events.js'
import { commitOk, leftOk } from '../helpers/cli.js'
import { type Peer, type PeerSet, killAll, logIds, makePeers, serve, syncReceived } from '../helpers/peers.js'

/** This file's port; every peer listens on it, each on its own loopback address. */
const PORT = 27616
const FILES = 20_000
/** 2,000 one-letter directories: 4,000 bytes of path, inside PATH_MAX. */
const DEEP = Array.from({ length: 2000 }, () => 'd').join('/')

describe('e2e: a directory of 20,000 files and a path 2,000 directories deep', () => {
  let set: PeerSet
  let A: Peer
  let B: Peer
  before(async () => {
    set = await makePeers(2, PORT)
    ;[A, B] = set.peers as [Peer, Peer]
    await mkdir(join(A.share, 'big'))
    for (let i = 0; i < FILES; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => writeFile(join(A.share, 'big', `line-${i + j}.txt`), `line ${i + j}\n`)))
    }
    await mkdir(join(A.share, DEEP), { recursive: true })
    await writeFile(join(A.share, DEEP, 'f'), 'deep\n')
    await commitOk(A.dir, ['-m', 'big and deep'])
  })
  afterEach(() => killAll())
  after(() => set.cleanup())

  it('syncs to a new peer with every file present, then sends a one-file change as a few small nodes', async () => {
    await serve(A)
    const first = await leftOk(B.dir, ['sync', A.address])
    // The first 20 files get a line each, the rest one line together.
    const received = first.split('\n').filter((l) => / received /.test(l))
    assert.equal(received.length, RECEIVED_LISTED + 1, first.slice(0, 2000))
    assert.match(received.at(-1)!, new RegExp(`received ${FILES + 1 - RECEIVED_LISTED} more files \\(\\d+ bytes\\) from `))
    const names = await readdir(join(B.share, 'big'))
    assert.equal(names.length, FILES)
    assert.equal(await readFile(join(B.share, 'big', 'line-12345.txt'), 'utf8'), 'line 12345\n')
    assert.equal(await readFile(join(B.share, DEEP, 'f'), 'utf8'), 'deep\n')
    assert.deepEqual(await logIds(B), await logIds(A))

    await writeFile(join(A.share, 'big', 'line-777.txt'), 'edited\n')
    await commitOk(A.dir, ['-m', 'one line'])
    const out = await leftOk(B.dir, ['sync', A.address])
    assert.equal(await readFile(join(B.share, 'big', 'line-777.txt'), 'utf8'), 'edited\n')
    // One plain node of 20,000 entries is about 2 MB; its shards are a few KB each.
    assert.ok(syncReceived(out) < 100_000, `received ${syncReceived(out)} bytes for a one-file change:\n${out}`)
    assert.match(await leftOk(B.dir, ['fsck']), /: ok$/)
  })
})
