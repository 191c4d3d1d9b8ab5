import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import type { CID } from 'multiformats/cid'
import { randomBytes } from 'node:crypto'
import { MissingObjectError, SessionClosedError } from '../../src/errors.js'
import { Arrivals } from '../../src/node/arrivals.js'
import { RAW, cidOf } from '../../src/object/cid.js'
import { type Repo, storeOf } from '../../src/repo/repo.js'
import { Store } from '../../src/store/store.js'
import type { Session } from '../../src/sync/session.js'
import { type SwarmPeer, SwarmSource, rankPeers } from '../../src/sync/swarm.js'
import { type Listener, connect, listen } from '../../src/sync/tls.js'
import { seededBytes } from '../helpers/data.js'
import { KEY, type ServedRepo, assertStoreWhole, initRepo, serveRepo } from './fixtures.js'

/** The swarm's view of a session, as the node builds it. */
function swarmPeer(session: Session): SwarmPeer {
  return { id: session.remotePeerId, source: session, lastAnswer: () => session.lastAnswer, distrust: (err) => session.fail(err) }
}

describe('sync/swarm: content from two peers over TLS on loopback', () => {
  let first: ServedRepo
  let second: Repo
  let secondListener: Listener
  const secondSessions: Session[] = []
  let head: CID
  const stores: Store[] = []
  const clients: Session[] = []

  before(async () => {
    first = await serveRepo('left-swarm-', 10_000)
    // Enough chunks that a peer can vanish halfway through.
    await writeFile(join(first.server.share, 'large.bin'), seededBytes('swarm-large', 6_000_000))
    head = (await first.server.commit('large'))!.cid
    second = await initRepo(join(first.root, 'second'))
    const dial = await connect({ address: first.listener.address, key: KEY, session: { store: second.objects, peerId: 'second-setup' } })
    await dial.fetch(head, { root: 'commit' })
    await dial.close()
    await second.integrate(head)
    secondListener = await listen({
      address: { host: '127.0.0.1', port: 0 },
      key: KEY,
      session: { store: storeOf(second), peerId: second.config.peerId, head: () => second.head(), timeoutMs: 10_000 },
      onSession: (s) => secondSessions.push(s)
    })
  })

  after(async () => {
    await Promise.all([...clients, ...secondSessions].map((s) => s.close()))
    await secondListener.close()
    await second.close()
    for (const s of stores) await s.close()
    await first.close()
  })

  /** A new, empty store with a session to each of the two peers. */
  async function newcomer(name: string): Promise<{ store: Store; toFirst: Session; toSecond: Session }> {
    const store = await Store.open(join(first.root, name), { create: true })
    stores.push(store)
    const session = { store, peerId: name, timeoutMs: 10_000 }
    const toFirst = await connect({ address: first.listener.address, key: KEY, session })
    const toSecond = await connect({ address: secondListener.address, key: KEY, session })
    clients.push(toFirst, toSecond)
    return { store, toFirst, toSecond }
  }

  it('takes blocks from both peers, and the copy is whole', async () => {
    const { store, toFirst, toSecond } = await newcomer('both')
    const swarm = new SwarmSource((c) => rankPeers(c, [toFirst, toSecond].map(swarmPeer)))
    const before = Date.now()
    await new Promise((resolve) => setTimeout(resolve, 5))
    await toFirst.fetch(head, { root: 'commit', contentSource: swarm })
    assert.ok(toSecond.lastAnswer > before, 'answers move lastAnswer')
    assert.ok(await store.has(head))
    await assertStoreWhole(store)
    // About half of some 120 chunks each; the history came from the first alone.
    const fromFirst = toFirst.stats.received
    const fromSecond = toSecond.stats.received
    assert.ok(fromSecond > 20, `second peer sent ${fromSecond} blocks`)
    assert.ok(fromFirst > 20, `first peer sent ${fromFirst} blocks`)
  })

  it('finishes from the other peer when one vanishes halfway', async () => {
    const { store, toFirst, toSecond } = await newcomer('vanish')
    const swarm = new SwarmSource((c) => rankPeers(c, [toFirst, toSecond].map(swarmPeer)))
    let cut = false
    await toFirst.fetch(head, {
      root: 'commit',
      contentSource: swarm,
      onProgress: (p) => {
        // Once chunks flow, the second peer's end of the connection goes away.
        if (!cut && toSecond.stats.received >= 10) {
          cut = true
          secondSessions.find((s) => s.remotePeerId === 'vanish')!.fail(new SessionClosedError(`test: gone after ${p.objects} objects`))
        }
      }
    })
    assert.ok(cut, 'the second peer served ten blocks before it went')
    assert.ok(toSecond.isClosed)
    assert.ok(await store.has(head))
    await assertStoreWhole(store)
  })
})

describe('sync/serve: a peer still fetching passes objects on', () => {
  let root: ServedRepo
  let holder: Store
  let listener: Listener
  // Wants are held at most 3 s here (20 s in a node).
  const arrivals = new Arrivals(3_000)
  const sessions: Session[] = []
  let asker: Session
  /** The head both say they fetch. */
  let head: CID
  let other: CID

  before(async () => {
    root = await serveRepo('left-hold-', 10_000)
    head = root.head
    await writeFile(join(root.server.share, 'another.txt'), 'another head\n')
    other = (await root.server.commit('another'))!.cid
    holder = await Store.open(join(root.root, 'holder'), { create: true })
    listener = await listen({
      address: { host: '127.0.0.1', port: 0 },
      key: KEY,
      session: { store: holder, peerId: 'holder', timeoutMs: 10_000, arriving: (cid, fetching) => arrivals.arriving(cid, fetching) },
      onSession: (s) => sessions.push(s)
    })
    const store = await Store.open(join(root.root, 'asker'), { create: true })
    after(() => store.close())
    asker = await connect({ address: listener.address, key: KEY, session: { store, peerId: 'asker', timeoutMs: 10_000 } })
  })

  after(async () => {
    await asker.close()
    await Promise.all(sessions.map((s) => s.close()))
    await listener.close()
    await holder.close()
    await root.close()
  })

  const chunk = (): { cid: ReturnType<typeof cidOf>; bytes: Uint8Array } => {
    const bytes = new Uint8Array(randomBytes(1000))
    return { cid: cidOf(RAW, bytes), bytes }
  }
  const within = <T>(p: Promise<T>, ms: number): Promise<T | 'pending'> => Promise.race([p, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))])
  /** Says `cid` to the holder as the head the asker fetches, and waits until the holder has heard it. */
  const askerFetches = async (cid: CID | null): Promise<void> => {
    asker.announceFetching(cid)
    const side = sessions.find((s) => s.remotePeerId === 'asker')!
    while (side.remoteFetching !== cid && !(cid !== null && side.remoteFetching?.equals(cid) === true)) await new Promise((resolve) => setTimeout(resolve, 5))
  }

  /** Runs `fn` while the holder fetches `h`. */
  async function whileFetching(h: CID, fn: () => Promise<void>): Promise<void> {
    arrivals.begin(h)
    try {
      await fn()
    } finally {
      arrivals.end(h)
    }
  }
  /** A want for a chunk the holder lacks is answered `missing` within a second, well before a hold would end. */
  const refusedAtOnce = async (): Promise<void> => {
    assert.ok(await within(asker.request(chunk().cid).catch((err: unknown) => err), 1_000) instanceof MissingObjectError)
  }

  it('answers missing at once when it fetches nothing, or another head than the asker', async () => {
    await askerFetches(head)
    await assert.rejects(asker.request(chunk().cid), MissingObjectError)
    assert.notEqual(other.toString(), head.toString())
    await whileFetching(other, refusedAtOnce)
  })

  it('holds a want while both fetch the same head, and answers it once the object is stored', async () => {
    const { cid, bytes } = chunk()
    await askerFetches(head)
    await whileFetching(head, async () => {
      const answer = asker.request(cid)
      assert.equal(await within(answer, 200), 'pending')
      // Other wants are still answered meanwhile.
      const another = chunk()
      await holder.write({ blocks: [another] })
      assert.deepEqual(await asker.request(another.cid), another.bytes)
      await holder.write({ blocks: [{ cid, bytes }] })
      arrivals.stored([cid])
      assert.deepEqual(await answer, bytes)
    })
  })

  it('answers a held want with missing once its fetch ends without the object, or it has waited long enough', async () => {
    await askerFetches(head)
    arrivals.begin(head)
    try {
      const ended = asker.request(chunk().cid)
      assert.equal(await within(ended, 200), 'pending')
      arrivals.end(head)
      await assert.rejects(ended, MissingObjectError)
      arrivals.begin(head)
      const waited = asker.request(chunk().cid)
      const since = Date.now()
      assert.equal(await within(waited, 500), 'pending')
      await assert.rejects(waited, MissingObjectError)
      assert.ok(Date.now() - since >= 2_500, `held ${Date.now() - since} ms`)
    } finally {
      arrivals.end(head)
    }
  })

  it('does not hold once the asker says it stopped fetching', async () => {
    await askerFetches(null)
    await whileFetching(head, refusedAtOnce)
  })
})
