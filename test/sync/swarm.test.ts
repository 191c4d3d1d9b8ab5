import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import type { CID } from 'multiformats/cid'
import { SessionClosedError } from '../../src/errors.js'
import { type Repo, storeOf } from '../../src/repo/repo.js'
import { Store } from '../../src/store/store.js'
import type { Session } from '../../src/sync/session.js'
import { type SwarmPeer, SwarmSource } from '../../src/sync/swarm.js'
import { type Listener, connect, listen } from '../../src/sync/tls.js'
import { seededBytes } from '../helpers/data.js'
import { KEY, type ServedRepo, assertStoreWhole, initRepo, serveRepo } from './fixtures.js'

/** The swarm's view of a session, as the node builds it. */
function swarmPeer(session: Session): SwarmPeer {
  return { id: session.remotePeerId, source: session, lastSeen: () => session.lastSeen, distrust: (err) => session.fail(err) }
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
    const swarm = new SwarmSource(() => [toFirst, toSecond].map(swarmPeer))
    await toFirst.fetch(head, { root: 'commit', contentSource: swarm })
    assert.ok(await store.has(head))
    await assertStoreWhole(store)
    // About half the chunks each; the history came from the first alone.
    const fromFirst = toFirst.stats.received
    const fromSecond = toSecond.stats.received
    assert.ok(fromSecond > 20, `second peer sent ${fromSecond} blocks`)
    assert.ok(fromFirst > fromSecond, `first peer sent ${fromFirst} blocks: the history and its share of chunks`)
  })

  it('finishes from the other peer when one vanishes halfway', async () => {
    const { store, toFirst, toSecond } = await newcomer('vanish')
    const swarm = new SwarmSource(() => [toFirst, toSecond].map(swarmPeer))
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
