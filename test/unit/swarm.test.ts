import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { HashMismatchError, type LeftError, MissingObjectError, ProtocolError, SessionClosedError, TimeoutError } from '../../src/errors.js'
import { RAW, cidOf } from '../../src/object/cid.js'
import { type SwarmPeer, SwarmSource, headOrder, rankPeers } from '../../src/sync/swarm.js'

type Behaviour = 'has' | 'missing' | 'closed' | 'wrong' | 'silent'

/** A peer that answers every request as `behaviour` says, and records what it was asked. */
class FakePeer implements SwarmPeer {
  readonly asked: CID[] = []
  readonly distrusted: LeftError[] = []
  seen = 0
  constructor(readonly id: string, public behaviour: Behaviour, private readonly objects: Map<string, Uint8Array>) {}
  readonly source = {
    request: (cid: CID): Promise<Uint8Array> => {
      this.asked.push(cid)
      switch (this.behaviour) {
        case 'has': return Promise.resolve(this.objects.get(cid.toString())!)
        case 'missing': return Promise.reject(new MissingObjectError(cid.toString()))
        case 'closed': return Promise.reject(new SessionClosedError('gone'))
        case 'wrong': return Promise.resolve(new Uint8Array([1, 2, 3]))
        case 'silent': return new Promise(() => {})
      }
    }
  }
  lastAnswer(): number {
    return this.seen
  }
  distrust(err: LeftError): void {
    this.distrusted.push(err)
  }
}

function object(): { cid: CID; bytes: Uint8Array; objects: Map<string, Uint8Array> } {
  const bytes = randomBytes(64)
  const cid = cidOf(RAW, bytes)
  return { cid, bytes, objects: new Map([[cid.toString(), bytes]]) }
}

/** The ids of `peers` in the order the swarm asks them for `cid`. */
const order = (cid: CID, peers: readonly FakePeer[]): string[] => rankPeers(cid, peers).map((p) => p.id)

describe('sync/swarm rankPeers', () => {
  it('orders the same peers the same way for a CID, whatever order they come in', () => {
    const ids = ['a1', 'b2', 'c3', 'd4'].map((id) => ({ id }))
    const { cid } = object()
    const once = rankPeers(cid, ids).map((p) => p.id)
    assert.deepEqual(rankPeers(cid, [...ids].reverse()).map((p) => p.id), once)
    assert.deepEqual([...once].sort(), ['a1', 'b2', 'c3', 'd4'])
  })

  it('puts each peer first for a fair share of objects', () => {
    const ids = ['5c1e0d7a9b3f2e41', '5c1e0d7a9b3f2e42', '0000000000000001'].map((id) => ({ id }))
    const first = new Map<string, number>()
    const runs = 3000
    for (let i = 0; i < runs; i++) {
      const top = rankPeers(cidOf(RAW, randomBytes(16)), ids)[0]!.id
      first.set(top, (first.get(top) ?? 0) + 1)
    }
    // A third each, within a margin that random CIDs pass (p < 1e-9).
    for (const { id } of ids) assert.ok(Math.abs((first.get(id) ?? 0) / runs - 1 / 3) < 0.06, `${id} first for ${first.get(id)} of ${runs}`)
  })
})

describe('sync/swarm headOrder', () => {
  const ids = (list: ReadonlyArray<{ id: string }>): string[] => list.map((p) => p.id)

  it('asks the top fetching peer first when it ranks above us, then the having peers by rank', () => {
    const have = [{ id: 'origin' }, { id: 'done' }]
    const fetching = [{ id: 'f1' }, { id: 'f2' }, { id: 'f3' }]
    let above = 0
    for (let i = 0; i < 300; i++) {
      const cid = cidOf(RAW, randomBytes(8))
      const all = rankPeers(cid, [...fetching, { id: 'me' }])
      const order = ids(headOrder(cid, 'me', have, fetching))
      assert.deepEqual(order.slice(-2), ids(rankPeers(cid, have)))
      if (all[0]!.id === 'me') assert.equal(order.length, 2)
      else {
        above++
        assert.deepEqual(order, [all[0]!.id, ...ids(rankPeers(cid, have))])
      }
    }
    // We come first among four fetchers for about a quarter of the objects.
    assert.ok(above > 150 && above < 285, `a fetching peer ranked first for ${above} of 300`)
  })

  it('never has two fetching peers ask each other for the same object', () => {
    const peers = ['a', 'b', 'c', 'd', 'e'].map((id) => ({ id }))
    for (let i = 0; i < 200; i++) {
      const cid = cidOf(RAW, randomBytes(8))
      const asks = new Map<string, string | undefined>()
      for (const me of peers) {
        const first = headOrder(cid, me.id, [{ id: 'origin' }], peers.filter((p) => p !== me))[0]!.id
        asks.set(me.id, first === 'origin' ? undefined : first)
      }
      // Exactly one peer asks the origin; every other asks that one.
      const toOrigin = [...asks].filter(([, to]) => to === undefined).map(([id]) => id)
      assert.equal(toOrigin.length, 1)
      for (const [id, to] of asks) if (to !== undefined) assert.equal(to, toOrigin[0], `${id} asks ${to}`)
    }
  })
})

describe('sync/swarm SwarmSource', () => {
  it('asks the top-ranked peer only, when it has the object', async () => {
    const { cid, bytes, objects } = object()
    const peers = ['p1', 'p2', 'p3'].map((id) => new FakePeer(id, 'has', objects))
    const got = await new SwarmSource((c) => rankPeers(c, peers)).request(cid)
    assert.deepEqual(got, bytes)
    const top = order(cid, peers)[0]
    assert.deepEqual(peers.map((p) => p.asked.length), peers.map((p) => (p.id === top ? 1 : 0)))
  })

  it('asks down the ranking past peers that lack the object or have hung up', async () => {
    const { cid, bytes, objects } = object()
    const peers = ['p1', 'p2', 'p3'].map((id) => new FakePeer(id, 'has', objects))
    const [first, second, third] = order(cid, peers).map((id) => peers.find((p) => p.id === id)!)
    first!.behaviour = 'missing'
    second!.behaviour = 'closed'
    assert.deepEqual(await new SwarmSource((c) => rankPeers(c, peers)).request(cid), bytes)
    assert.deepEqual([first!.asked.length, second!.asked.length, third!.asked.length], [1, 1, 1])
  })

  it('fails with MissingObjectError when every peer lacks it, and with the hang-up when every peer is gone', async () => {
    const { cid, objects } = object()
    const peers = ['p1', 'p2'].map((id) => new FakePeer(id, 'missing', objects))
    await assert.rejects(new SwarmSource((c) => rankPeers(c, peers)).request(cid), MissingObjectError)
    peers[0]!.behaviour = 'closed'
    await assert.rejects(new SwarmSource((c) => rankPeers(c, peers)).request(cid), MissingObjectError, 'one peer lacking it is the answer that counts')
    peers[1]!.behaviour = 'closed'
    await assert.rejects(new SwarmSource((c) => rankPeers(c, peers)).request(cid), SessionClosedError)
    await assert.rejects(new SwarmSource(() => []).request(cid), MissingObjectError)
  })

  it('distrusts a peer that sends the wrong bytes, and takes the object from the next', async () => {
    const { cid, bytes, objects } = object()
    const peers = ['p1', 'p2'].map((id) => new FakePeer(id, 'has', objects))
    const liar = peers.find((p) => p.id === order(cid, peers)[0])!
    liar.behaviour = 'wrong'
    assert.deepEqual(await new SwarmSource((c) => rankPeers(c, peers)).request(cid), bytes)
    assert.equal(liar.distrusted.length, 1)
    assert.ok(liar.distrusted[0] instanceof HashMismatchError)
    assert.equal(peers.find((p) => p !== liar)!.distrusted.length, 0)
    // With nobody honest left, the mismatch is the answer.
    for (const p of peers) p.behaviour = 'wrong'
    await assert.rejects(new SwarmSource((c) => rankPeers(c, peers)).request(cid), HashMismatchError)
  })

  it('distrusts a peer whose block breaks the protocol, and one whose wrong bytes come after another answered', async () => {
    const { cid, bytes, objects } = object()
    const peers = ['p1', 'p2', 'p3'].map((id) => new FakePeer(id, 'has', objects))
    const [first, second, third] = order(cid, peers).map((id) => peers.find((p) => p.id === id)!)
    first!.source.request = () => Promise.reject(new ProtocolError('block does not inflate'))
    assert.deepEqual(await new SwarmSource((c) => rankPeers(c, peers)).request(cid), bytes)
    assert.ok(first!.distrusted[0] instanceof ProtocolError)
    // Only the next peer is asked in its place, not two.
    assert.deepEqual([second!.asked.length, third!.asked.length], [1, 0])
    peers.splice(peers.indexOf(third!), 1)
    // The first stalls, the second answers; then the first's lie arrives.
    let lie!: (b: Uint8Array) => void
    first!.source.request = () => new Promise((resolve) => { lie = resolve })
    assert.deepEqual(await new SwarmSource((c) => rankPeers(c, peers), 30).request(cid), bytes)
    lie(new Uint8Array([9]))
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(first!.distrusted.length, 2)
    assert.ok(first!.distrusted[1] instanceof HashMismatchError)
    assert.equal(second!.distrusted.length, 0)
  })

  it('fails the request, not the process, when distrusting a peer throws', async () => {
    const { cid, objects } = object()
    const peer = new FakePeer('p1', 'wrong', objects)
    peer.distrust = () => { throw new Error('a close listener broke') }
    await assert.rejects(new SwarmSource(() => [peer]).request(cid), /a close listener broke/)
  })

  it('asks the next peer too when the first stays silent, and not while it keeps sending', async () => {
    const { cid, bytes, objects } = object()
    const peers = ['p1', 'p2'].map((id) => new FakePeer(id, 'has', objects))
    const slow = peers.find((p) => p.id === order(cid, peers)[0])!
    const other = peers.find((p) => p !== slow)!
    slow.behaviour = 'silent'
    // Busy: it sent something a moment ago, and keeps doing so.
    slow.seen = Date.now()
    const busy = setInterval(() => { slow.seen = Date.now() }, 10)
    const pending = new SwarmSource((c) => rankPeers(c, peers), 200).request(cid)
    // Two hedge periods: a peer that keeps talking is not hedged, however long.
    await new Promise((resolve) => setTimeout(resolve, 400))
    assert.equal(other.asked.length, 0, 'a peer that keeps sending is not hedged')
    clearInterval(busy)
    assert.deepEqual(await pending, bytes)
    assert.equal(other.asked.length, 1)
    assert.equal(slow.asked.length, 1)
  })

  /**
   * A peer that keeps `held` back while answering everything else at
   * once, and keeps answering others (a fresh lastAnswer) all along.
   */
  function holding(id: string, held: CID, objects: Map<string, Uint8Array>): { peer: FakePeer; stop: () => void } {
    const peer = new FakePeer(id, 'has', objects)
    const inner = peer.source.request
    peer.source.request = (c: CID) => (c.equals(held) ? (peer.asked.push(c), new Promise<Uint8Array>(() => {})) : inner(c))
    peer.seen = Date.now()
    const busy = setInterval(() => { peer.seen = Date.now() }, 2)
    return { peer, stop: () => clearInterval(busy) }
  }

  it('asks the next peer too when the first keeps a request back while it answers later ones', async () => {
    const first = object()
    const later = object()
    const objects = new Map([...first.objects, ...later.objects])
    const { peer: holder, stop } = holding('holder', first.cid, objects)
    const other = new FakePeer('other', 'has', objects)
    try {
      const swarm = new SwarmSource(() => [holder, other], 40)
      const pending = swarm.request(first.cid)
      assert.deepEqual(await swarm.request(later.cid), later.bytes)
      assert.deepEqual(await pending, first.bytes)
      // Three hedge periods after the later answer, not before it.
      assert.deepEqual(other.asked.map(String), [String(first.cid)])
    } finally {
      stop()
    }
  })

  it('never hedges a slow peer that answers in order, however long each answer takes', async () => {
    const items = [object(), object(), object()]
    const objects = new Map(items.flatMap((o) => [...o.objects]))
    const slow = new FakePeer('slow', 'has', objects)
    const inner = slow.source.request
    // Answers one at a time, 150 ms apart: a slow link, three times the hedge period.
    let queue = Promise.resolve()
    slow.source.request = (c: CID) => {
      const answer = queue.then(() => new Promise((resolve) => setTimeout(resolve, 150))).then(() => { slow.seen = Date.now(); return inner(c) })
      queue = answer.then(() => {})
      return answer
    }
    slow.seen = Date.now()
    const busy = setInterval(() => { slow.seen = Date.now() }, 2)
    const other = new FakePeer('other', 'has', objects)
    try {
      const swarm = new SwarmSource(() => [slow, other], 40)
      const got = await Promise.all(items.map((o) => swarm.request(o.cid)))
      got.forEach((bytes, i) => assert.deepEqual(bytes, items[i]!.bytes))
      assert.equal(other.asked.length, 0, 'the slow peer was asked again elsewhere')
    } finally {
      clearInterval(busy)
    }
  })

  it('gives up with a timeout once every peer asked keeps a request back while answering later ones', async () => {
    const first = object()
    const later = object()
    const { peer: holder, stop } = holding('holder', first.cid, new Map([...first.objects, ...later.objects]))
    try {
      const swarm = new SwarmSource(() => [holder], 10)
      const pending = swarm.request(first.cid)
      const started = Date.now()
      await swarm.request(later.cid)
      await assert.rejects(pending, TimeoutError)
      // 24 hedge periods of 10 ms after the later answer was seen.
      assert.ok(Date.now() - started >= 240, `gave up after ${Date.now() - started} ms`)
    } finally {
      stop()
    }
  })

  it('looks again, while the only peer asked keeps a request back, for a peer that joined', async () => {
    const first = object()
    const later = object()
    const objects = new Map([...first.objects, ...later.objects])
    const { peer: holder, stop } = holding('holder', first.cid, objects)
    const peers: FakePeer[] = [holder]
    try {
      const swarm = new SwarmSource(() => peers, 40)
      const pending = swarm.request(first.cid)
      await swarm.request(later.cid)
      // Past the hold limit (3 × 40 ms): the swarm has run out of peers and looks again.
      await new Promise((resolve) => setTimeout(resolve, 300))
      peers.push(new FakePeer('late', 'has', objects))
      assert.deepEqual(await pending, first.bytes)
    } finally {
      stop()
    }
  })

  it('asks the peers in the order the caller lists them', async () => {
    const { cid, bytes, objects } = object()
    const peers = ['p1', 'p2', 'p3'].map((id) => new FakePeer(id, 'missing', objects))
    peers[2]!.behaviour = 'has'
    const asked: string[] = []
    for (const p of peers) {
      const inner = p.source.request
      p.source.request = (c: CID) => { asked.push(p.id); return inner(c) }
    }
    assert.deepEqual(await new SwarmSource(() => [peers[1]!, peers[0]!, peers[2]!]).request(cid), bytes)
    assert.deepEqual(asked, ['p2', 'p1', 'p3'])
  })

  it('asks a peer that joined after the request started, when the one asked stalls', async () => {
    const { cid, bytes, objects } = object()
    const peers: FakePeer[] = [new FakePeer('early', 'silent', objects)]
    const pending = new SwarmSource((c) => rankPeers(c, peers), 30).request(cid)
    peers.push(new FakePeer('late', 'has', objects))
    assert.deepEqual(await pending, bytes)
  })
})
