import { after, afterEach, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { leftOk } from '../helpers/cli.js'
import { seededBytes } from '../helpers/data.js'
import { type Peer, type PeerSet, killAll, makePeers, waitForEqual, watch, watchArgs } from '../helpers/peers.js'

/** This file's port; every peer listens on it, each on its own loopback address. */
const PORT = 27617

interface PeerJson { id: string | null; address: string; online: boolean; received: number; sent: number }

/** The peers a running `left watch` knows, from `left status --json`. */
async function peersOf(peer: Peer): Promise<PeerJson[]> {
  return JSON.parse(await leftOk(peer.dir, ['status', '--json'])).synchronizer.peers
}

/** Bytes `peer` has sent to all its peers since it started. */
async function sentBy(peer: Peer): Promise<number> {
  return (await peersOf(peer)).reduce((n, p) => n + p.sent, 0)
}

describe('e2e: peers share the upload (issue 12)', () => {
  let set: PeerSet
  let peers: Peer[]
  before(async () => {
    set = await makePeers(4, PORT)
    peers = set.peers
  })
  afterEach(() => killAll())
  after(() => set.cleanup())

  it('a peer that joins late takes a file from every peer that has it, and takes it about once', async () => {
    const [A, B, C, D] = peers as [Peer, Peer, Peer, Peer]
    const size = 24 << 20
    const data = seededBytes('swarm', size)
    await writeFile(join(A.share, 'film.bin'), data)
    for (const p of [A, B, C]) await watch(p, watchArgs(p, [A, B, C]))
    await waitForEqual([A.share, B.share, C.share])
    await watch(D, watchArgs(D, peers))
    await waitForEqual(peers.map((p) => p.share))
    assert.ok((await readFile(join(D.share, 'film.bin'))).equals(data))
    const seen = await peersOf(D)
    const received = [A, B, C].map((p) => seen.find((s) => s.address === p.address)?.received ?? 0)
    // Each is asked first for about a third of the chunks (sync/swarm.ts).
    for (const [i, bytes] of received.entries()) assert.ok(bytes > size / 6, `D received ${bytes} bytes from ${'ABC'[i]}: ${JSON.stringify(seen)}`)
    // Three peers announced the same head at once: each chunk still came once.
    const total = received.reduce((a, b) => a + b, 0)
    assert.ok(total < size * 1.5, `D received ${total} bytes for a ${size}-byte file`)
  })

  it('a new file on one peer reaches every other, and its origin sends it about once', async () => {
    const [A] = peers as [Peer]
    for (const p of peers) await watch(p, watchArgs(p, peers))
    await waitForEqual(peers.map((p) => p.share))
    const sentBefore = await sentBy(A)
    const size = 24 << 20
    const data = seededBytes('mesh', size)
    await writeFile(join(A.share, 'mesh.bin'), data)
    await waitForEqual(peers.map((p) => p.share))
    for (const p of peers) assert.ok((await readFile(join(p.share, 'mesh.bin'))).equals(data), p.name)
    const sent = (await sentBy(A)) - sentBefore
    // Each peer would take the whole file from A; the peers fetching it pass chunks on instead.
    assert.ok(sent < size * 1.25, `A sent ${sent} bytes for a ${size}-byte file to ${peers.length - 1} peers`)
  })

  it('a head travels down a chain of peers with no link between its ends', async () => {
    const [A, B, C] = peers as [Peer, Peer, Peer]
    await watch(B, ['--listen', B.address])
    await watch(A, ['--listen', A.address, '--peers', B.address])
    await watch(C, ['--listen', C.address, '--peers', B.address])
    await writeFile(join(A.share, 'chain.txt'), 'from one end to the other\n')
    await waitForEqual([A.share, B.share, C.share])
    assert.equal(await readFile(join(C.share, 'chain.txt'), 'utf8'), 'from one end to the other\n')
    const ids = async (p: Peer): Promise<string[]> => (await peersOf(p)).filter((s) => s.online).map((s) => s.address)
    assert.deepEqual(await ids(C), [B.address], 'C talks to B alone')
    assert.deepEqual(await ids(A), [B.address], 'A talks to B alone')
  })
})

describe('e2e: ten peers (issue 12)', () => {
  let set: PeerSet
  let peers: Peer[]
  before(async () => {
    set = await makePeers(10, PORT + 1)
    peers = set.peers
  })
  afterEach(() => killAll())
  after(() => set.cleanup())

  it('in a full mesh, an edit and a 256 MiB file reach all ten, and the origin sends the file under 3 times', async () => {
    const [A] = peers as [Peer]
    const shares = peers.map((p) => p.share)
    for (const p of peers) await watch(p, watchArgs(p, peers))
    await writeFile(join(A.share, 'note.txt'), 'a small edit\n')
    await waitForEqual(shares)
    const sentBefore = await sentBy(A)
    const size = 256 << 20
    await writeFile(join(A.share, 'big.bin'), seededBytes('ten', size))
    const started = Date.now()
    await waitForEqual(shares, 240_000)
    const seconds = (Date.now() - started) / 1000
    const sent = (await sentBy(A)) - sentBefore
    const others = await Promise.all(peers.slice(1).map(sentBy))
    console.log(`ten peers: on all ten in ${seconds} s (file written to equal folders); A sent ${sent} bytes; the others ${others.join(', ')}`)
    assert.ok(sent < size * 3, `A sent ${sent} bytes for a ${size}-byte file`)
  })

  it('in a chain, an edit travels from one end to the other', async () => {
    // Each peer dials the next one only.
    for (const [i, p] of peers.entries()) await watch(p, ['--listen', p.address, ...(i + 1 < peers.length ? ['--peers', peers[i + 1]!.address] : [])])
    await writeFile(join(peers[0]!.share, 'chain.txt'), 'down the line\n')
    await waitForEqual(peers.map((p) => p.share))
  })
})
