import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { TokenBucket, forEachLimit } from '../../src/limit.js'

describe('limit: TokenBucket', () => {
  it('gives a burst at once, then one token per 1/rate seconds, and says how long to wait', () => {
    const bucket = new TokenBucket(3, 2, 1000)
    assert.deepEqual([bucket.take(1000), bucket.take(1000), bucket.take(1000)], [0, 0, 0])
    assert.equal(bucket.take(1000), 500, 'the fourth waits for half a second')
    assert.equal(bucket.take(1250), 250, 'asking again earns nothing extra')
    assert.equal(bucket.take(1500), 0)
    assert.equal(bucket.take(1500), 500)
  })

  it('never holds more than its burst, however long it was idle', () => {
    const bucket = new TokenBucket(2, 10, 0)
    bucket.take(0)
    const waits = [bucket.take(3_600_000), bucket.take(3_600_000), bucket.take(3_600_000)]
    assert.deepEqual(waits, [0, 0, 100])
  })

  it('is not fooled by a clock that goes back', () => {
    const bucket = new TokenBucket(1, 1, 5000)
    assert.equal(bucket.take(5000), 0)
    assert.equal(bucket.take(1000), 1000, 'no tokens for negative time')
  })
})

describe('limit: forEachLimit', () => {
  it('runs at most limit at once and rethrows the first failure after the running ones end', async () => {
    let running = 0
    let most = 0
    const done: number[] = []
    await assert.rejects(forEachLimit([1, 2, 3, 4, 5, 6], 2, async (n) => {
      running++
      most = Math.max(most, running)
      await new Promise((r) => setTimeout(r, 5))
      running--
      if (n === 3) throw new Error('three')
      done.push(n)
    }), /three/)
    assert.equal(most, 2)
    assert.equal(running, 0, 'nothing still running when it settles')
    assert.ok(!done.includes(6), 'no new item started after the failure')
  })
})
