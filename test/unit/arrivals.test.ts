import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Arrivals, MAX_WAITERS } from '../../src/node/arrivals.js'
import { DAG_CBOR, RAW, cidOf } from '../../src/object/cid.js'

const chunk = () => cidOf(RAW, randomBytes(16))
const head = () => cidOf(DAG_CBOR, randomBytes(16))

/** 'settled' once `p` has settled, else 'pending', after letting pending callbacks run. */
async function state(p: Promise<void> | undefined): Promise<string> {
  if (p === undefined) return 'answer now'
  let done = false
  void p.then(() => { done = true })
  await new Promise((resolve) => setImmediate(resolve))
  return done ? 'settled' : 'pending'
}

describe('node/arrivals', () => {
  it('holds only for a peer that fetches a head this node fetches too', async () => {
    const a = new Arrivals()
    const h = head()
    assert.equal(await state(a.arriving(chunk(), h)), 'answer now', 'no fetch running')
    a.begin(h)
    assert.equal(await state(a.arriving(chunk(), null)), 'answer now', 'the peer fetches nothing')
    assert.equal(await state(a.arriving(chunk(), head())), 'answer now', 'the peer fetches another head')
    const c = chunk()
    const w = a.arriving(c, h)
    assert.equal(await state(w), 'pending')
    a.stored([chunk()])
    assert.equal(await state(w), 'pending', 'another object landed')
    a.stored([c])
    assert.equal(await state(w), 'settled')
    a.end(h)
  })

  it('lets go of a want when the last fetch of its head ends, not before', async () => {
    const a = new Arrivals()
    const h = head()
    a.begin(h)
    a.begin(h)
    const w = a.arriving(chunk(), h)
    a.end(h)
    assert.equal(await state(w), 'pending', 'one fetch of the head still runs')
    a.end(h)
    assert.equal(await state(w), 'settled')
  })

  it('keeps a want shared by askers of two heads until neither head is being fetched', async () => {
    const a = new Arrivals()
    const [h1, h2] = [head(), head()]
    a.begin(h1)
    a.begin(h2)
    const c = chunk()
    const w1 = a.arriving(c, h1)
    const w2 = a.arriving(c, h2)
    a.end(h1)
    assert.equal(await state(w1), 'pending')
    assert.equal(await state(w2), 'pending')
    a.end(h2)
    assert.equal(await state(w2), 'settled')
  })

  it('lets go of a want after the hold time', async () => {
    // Long enough that a loaded machine does not let it pass before the first look.
    const a = new Arrivals(500)
    const h = head()
    a.begin(h)
    const w = a.arriving(chunk(), h)
    assert.equal(await state(w), 'pending')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    assert.equal(await state(w), 'settled')
    a.end(h)
  })

  it(`answers at once past ${MAX_WAITERS} objects waited for`, async () => {
    const a = new Arrivals()
    const h = head()
    a.begin(h)
    for (let i = 0; i < MAX_WAITERS; i++) assert.notEqual(a.arriving(chunk(), h), undefined)
    assert.equal(a.arriving(chunk(), h), undefined)
    a.end(h)
    // The end let them all go, so there is room again.
    a.begin(h)
    assert.notEqual(a.arriving(chunk(), h), undefined)
    a.end(h)
  })
})
