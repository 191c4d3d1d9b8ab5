import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { SharedLock } from '../../src/repo/mutex.js'

/** A promise and its resolver, to hold a lock open until the test says. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('repo/mutex: SharedLock (fetches share it, gc takes it alone)', () => {
  it('runs shared holders together, and an exclusive one only after they end', async () => {
    const lock = new SharedLock()
    const log: string[] = []
    const a = gate()
    const b = gate()
    const first = lock.withShared(async () => { log.push('a in'); await a.promise; log.push('a out') })
    const second = lock.withShared(async () => { log.push('b in'); await b.promise; log.push('b out') })
    await tick()
    const exclusive = lock.withExclusive(async () => { log.push('gc') })
    await tick()
    assert.deepEqual(log, ['a in', 'b in'], 'both fetches run at once; gc waits')
    a.open()
    await first
    await tick()
    assert.deepEqual(log, ['a in', 'b in', 'a out'], 'gc still waits for the second fetch')
    b.open()
    await Promise.all([second, exclusive])
    assert.deepEqual(log, ['a in', 'b in', 'a out', 'b out', 'gc'])
  })

  it('keeps shared holders that come after a waiting exclusive one out until it ends', async () => {
    const lock = new SharedLock()
    const log: string[] = []
    const a = gate()
    const first = lock.withShared(async () => { await a.promise; log.push('fetch 1') })
    await tick()
    const exclusive = lock.withExclusive(async () => { log.push('gc') })
    await tick()
    const later = lock.withShared(async () => { log.push('fetch 2') })
    await tick()
    assert.deepEqual(log, [], 'the later fetch waits behind gc')
    a.open()
    await Promise.all([first, exclusive, later])
    assert.deepEqual(log, ['fetch 1', 'gc', 'fetch 2'])
  })

  it('releases the lock when a holder fails', async () => {
    const lock = new SharedLock()
    await assert.rejects(lock.withExclusive(async () => { throw new Error('boom') }), /boom/)
    await assert.rejects(lock.withShared(async () => { throw new Error('bang') }), /bang/)
    assert.equal(await lock.withExclusive(async () => 'free'), 'free')
    assert.equal(await lock.withShared(async () => 'free'), 'free')
  })
})
