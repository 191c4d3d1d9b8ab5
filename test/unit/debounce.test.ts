import { afterEach, beforeEach, describe, it, mock } from 'node:test'
import assert from 'node:assert/strict'
import { Debouncer } from '../../src/watch/debounce.js'

describe('watch/debounce (mock timers)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 }))
  afterEach(() => mock.timers.reset())

  /** A debouncer whose fire calls are counted; `hold` makes each fire wait until released. */
  function counted(quietMs: number, maxWaitMs: number, hold = false): { d: Debouncer; fires: number[]; release: () => void } {
    const fires: number[] = []
    let waiting: (() => void) | undefined
    const d = new Debouncer({ quietMs, maxWaitMs }, async () => {
      fires.push(Date.now())
      if (hold) await new Promise<void>((resolve) => { waiting = resolve })
    })
    return { d, fires, release: () => waiting?.() }
  }

  it('fires once, quietMs after the last of a burst of events', () => {
    const { d, fires } = counted(200, 10_000)
    for (let i = 0; i < 5; i++) {
      d.poke()
      mock.timers.tick(100)
    }
    assert.deepEqual(fires, [])
    mock.timers.tick(99)
    assert.deepEqual(fires, [])
    mock.timers.tick(1)
    assert.deepEqual(fires, [1_000_600])
    mock.timers.tick(10_000)
    assert.equal(fires.length, 1)
  })

  it('fires at most maxWaitMs after the first event of a folder that never goes quiet', async () => {
    const { d, fires } = counted(200, 1_000)
    for (let t = 0; t < 2_500; t += 100) {
      d.poke()
      mock.timers.tick(100)
      // Let a finished fire settle (setImmediate is not mocked).
      await new Promise((r) => setImmediate(r))
    }
    // The first unfired event at 0 and again at the fire: 1,000 ms, then 2,000 ms.
    assert.deepEqual(fires, [1_001_000, 1_002_000])
  })

  it('never runs fire twice at once: events during a fire make one more fire after it', async () => {
    const { d, fires, release } = counted(50, 10_000, true)
    d.poke()
    mock.timers.tick(50)
    assert.equal(fires.length, 1)
    d.poke()
    mock.timers.tick(50)
    d.poke()
    mock.timers.tick(50)
    assert.equal(fires.length, 1, 'still running the first')
    release()
    // Let the first fire's promise settle, then the re-poke's quiet time pass.
    await new Promise((r) => setImmediate(r))
    mock.timers.tick(50)
    assert.equal(fires.length, 2)
    release()
  })

  it('does nothing after close', () => {
    const { d, fires } = counted(50, 1_000)
    d.poke()
    d.close()
    d.poke()
    mock.timers.tick(5_000)
    assert.deepEqual(fires, [])
  })
})
