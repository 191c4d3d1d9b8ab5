import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ChangedPaths } from '../../src/worktree/changed-paths.js'

/** The paths of a scope, sorted; undefined for the whole folder. */
function paths(scope: { paths: ReadonlySet<string> | undefined }): string[] | undefined {
  return scope.paths === undefined ? undefined : [...scope.paths].sort()
}

describe('worktree/changed-paths', () => {
  it('asks for the whole folder until a scan of it settles, then for what was reported', () => {
    const c = new ChangedPaths()
    c.add('a.txt')
    const first = c.take('')
    assert.equal(paths(first), undefined)
    c.settle(first)
    assert.deepEqual(paths(c.take('')), [])
    c.add('b.txt')
    c.add('d/e.txt')
    assert.deepEqual(paths(c.take('')), ['b.txt', 'd/e.txt'])
  })

  it('keeps a path reported again after the scope was taken, and forgets the rest', () => {
    const c = new ChangedPaths()
    c.settle(c.take(''))
    c.add('a.txt')
    c.add('b.txt')
    const scope = c.take('')
    c.add('b.txt')
    c.add('c.txt')
    c.settle(scope)
    assert.deepEqual(paths(c.take('')), ['b.txt', 'c.txt'])
  })

  it('keeps what a scan held, and forgets nothing when its commit did not land', () => {
    const c = new ChangedPaths()
    c.settle(c.take(''))
    c.add('a.txt')
    c.add('big.bin')
    c.take('')
    // No settle: the commit failed, so both wait for the next one.
    const again = c.take('')
    assert.deepEqual(paths(again), ['a.txt', 'big.bin'])
    c.settle(again, ['big.bin'])
    assert.deepEqual(paths(c.take('')), ['big.bin'])
  })

  it('asks for the whole folder after everything(), even when a scope taken before it settles', () => {
    const c = new ChangedPaths()
    c.settle(c.take(''))
    const before = c.take('')
    c.everything()
    c.settle(before)
    assert.equal(paths(c.take('')), undefined)
    const whole = c.take('')
    c.everything()
    c.settle(whole)
    assert.equal(paths(c.take('')), undefined, 'asked for again after the scan started')
    c.settle(c.take(''))
    assert.deepEqual(paths(c.take('')), [])
  })

  it('asks for the whole folder when the ignore rules changed, when .leftignore changed, or when told to', () => {
    const c = new ChangedPaths()
    c.settle(c.take('*.log'))
    assert.deepEqual(paths(c.take('*.log')), [])
    assert.equal(paths(c.take('*.tmp')), undefined)
    assert.equal(paths(c.take('*.log', true)), undefined)
    c.add('.leftignore')
    assert.equal(paths(c.take('*.log')), undefined)
    c.settle(c.take('*.log'))
    assert.deepEqual(paths(c.take('*.log')), [])
  })
})
