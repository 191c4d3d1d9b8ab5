import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { BOUND_ABOVE, BOUND_BELOW, holdGrowth } from '../../cli/heap.js'

const run = promisify(execFile)
const heapModule = fileURLToPath(new URL('../../cli/heap.js', import.meta.url))

describe('cli/heap: a big heap grows to twice what survives; a small one by V8\'s rule', () => {
  it('holds growth above BOUND_ABOVE and lets go below BOUND_BELOW, not in between', () => {
    assert.equal(holdGrowth(BOUND_ABOVE + 1, false), true)
    assert.equal(holdGrowth(BOUND_ABOVE - 1, false), false)
    // Between the two, it stays as it is: a heap near one bound does not flip at every collection.
    const between = (BOUND_ABOVE + BOUND_BELOW) / 2
    assert.equal(holdGrowth(between, true), true)
    assert.equal(holdGrowth(between, false), false)
    assert.equal(holdGrowth(BOUND_BELOW - 1, true), false)
  })

  it('follows what survives full collections in a real process, and V8 takes the flag without a word', async () => {
    // A child process: about 70 MB kept across full collections, then let go.
    const script = `
      const { boundHeapGrowth } = await import(${JSON.stringify(heapModule)})
      const bound = boundHeapGrowth()
      const tick = () => new Promise((resolve) => setTimeout(resolve, 50))
      let keep = Array.from({ length: 96 }, () => Array.from({ length: 1024 * 128 / 8 }, (_, i) => ({ i })))
      gc(); await tick()
      const big = bound.held
      keep = undefined
      gc(); await tick()
      console.log(JSON.stringify({ big, small: bound.held }))
    `
    const { stdout, stderr } = await run(process.execPath, ['--expose-gc', '--input-type=module', '-e', script])
    assert.equal(stderr, '')
    assert.deepEqual(JSON.parse(stdout), { big: true, small: false })
  })
})
