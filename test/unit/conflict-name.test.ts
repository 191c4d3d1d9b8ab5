import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { conflictName, parseConflictName } from '../../src/history/conflict-name.js'
import { isValidName } from '../../src/object/index.js'

describe('history/conflict-name', () => {
  it('reads back what conflictName wrote: original name, label, time to the second, attempt', () => {
    const t = Date.UTC(2026, 10, 29, 10, 10, 10)
    assert.deepEqual(parseConflictName(conflictName('notes.txt', 'laptop', t + 999)), { original: 'notes.txt', label: 'laptop', time: t, attempt: 1 })
    assert.deepEqual(parseConflictName(conflictName('a.tar.gz', 'peer-1', t, 3)), { original: 'a.tar.gz', label: 'peer-1', time: t, attempt: 3 })
    assert.deepEqual(parseConflictName(conflictName('.bashrc', 'x', t)), { original: '.bashrc', label: 'x', time: t, attempt: 1 })
    assert.deepEqual(parseConflictName(conflictName('Makefile', 'a-20200101-000000', t)), { original: 'Makefile', label: 'a-20200101-000000', time: t, attempt: 1 })
  })

  it('says undefined for every other name', () => {
    for (const name of ['notes.txt', 'notes.sync-conflict-.txt', '.sync-conflict-x-20261129-101010', 'a.sync-conflict-x-2026112-101010.txt', 'a.sync-conflict-x-20261329-101010']) {
      assert.equal(parseConflictName(name), undefined, name)
    }
  })

  it('round-trips any valid name whose copy name needed no cut, with any label', () => {
    fc.assert(fc.property(
      fc.string({ minLength: 1, maxLength: 40 }).filter(isValidName),
      fc.string({ maxLength: 20 }),
      fc.integer({ min: 0, max: 4102444800000 }),
      fc.integer({ min: 1, max: 50 }),
      (name, label, time, attempt) => {
        const copy = conflictName(name, label, time, attempt)
        const parsed = parseConflictName(copy)
        assert.ok(parsed !== undefined, copy)
        assert.equal(parsed.original, name)
        assert.equal(parsed.time, Math.floor(time / 1000) * 1000)
        assert.equal(parsed.attempt, attempt)
      }
    ))
  })
})
