import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { type ApiPlan, MAX_LOG, planRequest } from '../../src/gui/routes.js'

function plan(method: string, target: string, body: Record<string, unknown> = {}): ApiPlan {
  const url = new URL(target, 'http://page')
  return planRequest({ method, path: url.pathname, query: url.searchParams, body })
}

function steps(p: ApiPlan): ReadonlyArray<readonly string[]> {
  assert.equal(p.kind, 'run', JSON.stringify(p))
  return p.kind === 'run' ? p.steps : []
}

function status(p: ApiPlan): number | undefined {
  return p.kind === 'error' ? p.status : undefined
}

describe('gui/routes', () => {
  it('answers reads with the --json form of the matching command', () => {
    assert.deepEqual(steps(plan('GET', '/api/status')), [['status', '--json']])
    assert.deepEqual(steps(plan('GET', '/api/log')), [['log', '--json', '-n', '50']])
    assert.deepEqual(steps(plan('GET', '/api/log?n=7')), [['log', '--json', '-n', '7']])
    assert.deepEqual(steps(plan('GET', '/api/commit?id=abcd1234')), [['log', '--json', '-n', '1', '--name-status', 'abcd1234', '--']])
    assert.deepEqual(steps(plan('GET', '/api/files')), [['ls', '--json']])
    assert.deepEqual(steps(plan('GET', '/api/files?path=photos/2024')), [['ls', '--json', '--', 'photos/2024']])
    assert.deepEqual(steps(plan('GET', '/api/versions?path=a.txt')), [['versions', '--json', '--', 'a.txt']])
    assert.deepEqual(plan('GET', '/api/events?since=12'), { kind: 'events', argv: ['events', '--json', '--since', '12'] })
  })

  it('restores then commits, and pauses or resumes one peer or all', () => {
    assert.deepEqual(steps(plan('POST', '/api/restore', { path: 'a b.txt', commit: 'abcd1234' })),
      [['restore', '-s', 'abcd1234', '--', 'a b.txt'], ['commit', '--json', '-m', 'restore a b.txt from abcd1234']])
    assert.deepEqual(steps(plan('POST', '/api/resolve', { copy: 'a.sync-conflict-x-20261129-101010.txt', keep: 'that' })),
      [['resolve', '--keep', 'that', '--', 'a.sync-conflict-x-20261129-101010.txt'], ['commit', '--json', '-m', 'resolve the conflict of a.sync-conflict-x-20261129-101010.txt: keep that one']])
    assert.deepEqual(steps(plan('GET', '/api/conflicts')), [['conflicts', '--json']])
    assert.deepEqual(steps(plan('POST', '/api/pause', {})), [['pause']])
    assert.deepEqual(steps(plan('POST', '/api/pause', { peer: '0123456789abcdef' })), [['pause', '--', '0123456789abcdef']])
    assert.deepEqual(steps(plan('POST', '/api/resume', { peer: '[::1]:24242' })), [['resume', '--', '[::1]:24242']])
  })

  it('never lets a value from the page be read as an option', () => {
    // Paths and peers go after `--`; a commit id must be letters and digits.
    assert.deepEqual(steps(plan('GET', '/api/versions?path=--force')), [['versions', '--json', '--', '--force']])
    assert.deepEqual(steps(plan('POST', '/api/pause', { peer: '-x' })), [['pause', '--', '-x']])
    assert.equal(status(plan('GET', '/api/commit?id=--all')), 400)
    assert.equal(status(plan('POST', '/api/restore', { path: 'a', commit: '-f' })), 400)
  })

  it('refuses malformed values with 400', () => {
    for (const p of [
      plan('GET', '/api/log?n=0'), plan('GET', `/api/log?n=${MAX_LOG + 1}`), plan('GET', '/api/log?n=1.5'),
      plan('GET', '/api/files?path=/etc'), plan('GET', '/api/files?path=a%00b'), plan('GET', '/api/versions'),
      plan('GET', '/api/events?since=-1'), plan('POST', '/api/restore', { path: '', commit: 'abcd1234' }),
      plan('POST', '/api/restore', { path: 3, commit: 'abcd1234' }), plan('POST', '/api/pause', { peer: 'a b' }),
      plan('POST', '/api/pause', { peer: 7 }), plan('POST', '/api/resolve', { copy: 'a', keep: 'both' }),
      plan('POST', '/api/resolve', { keep: 'this' })
    ]) assert.equal(status(p), 400, JSON.stringify(p))
  })

  it('answers 404 to other routes and to the wrong method', () => {
    assert.equal(status(plan('GET', '/api/nothing')), 404)
    assert.equal(status(plan('POST', '/api/status')), 404)
    assert.equal(status(plan('GET', '/api/restore')), 404)
    assert.equal(status(plan('DELETE', '/api/pause')), 404)
  })
})
