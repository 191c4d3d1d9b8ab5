import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { type GraphCommit, drawGraph } from '../../cli/graph.js'

/** The graph with each commit's id after its `*`, as `left log --graph --oneline` prints it. */
function draw(commits: readonly GraphCommit[]): string {
  const out: string[] = []
  drawGraph(commits).forEach((rows, i) => {
    out.push(...rows.before, `${rows.commit} ${commits[i]!.id}`, ...rows.after)
  })
  return out.join('\n')
}

const c = (id: string, ...parents: string[]): GraphCommit => ({ id, parents })

describe('cli/graph: log --graph', () => {
  it('draws a straight line for a history without merges', () => {
    assert.equal(draw([c('c', 'b'), c('b', 'a'), c('a')]), '* c\n* b\n* a')
  })

  it('opens a line at a merge and joins it where both sides meet, whichever side comes first', () => {
    assert.equal(draw([c('m', 'a', 'b'), c('a', 'base'), c('b', 'base'), c('base')]), [
      '* m',
      '|\\',
      '* | a',
      '| * b',
      '|/',
      '* base'
    ].join('\n'))
    assert.equal(draw([c('m', 'a', 'b'), c('b', 'base'), c('a', 'base'), c('base')]), [
      '* m',
      '|\\',
      '| * b',
      '* | a',
      '|/',
      '* base'
    ].join('\n'))
  })

  it('keeps a line for every head, and ends a line at a first commit', () => {
    assert.equal(draw([c('x', 'x0'), c('y', 'y0'), c('x0'), c('y0')]), '* x\n| * y\n* | x0\n* y0')
  })

  it('draws two merges in a row on the same two lines', () => {
    assert.equal(draw([c('m2', 'm1', 'b2'), c('b2', 'b1'), c('m1', 'a1', 'b1'), c('b1', 'base'), c('a1', 'base'), c('base')]), [
      '* m2',
      '|\\',
      '| * b2',
      '* | m1',
      '|\\|',
      '| * b1',
      '* | a1',
      '|/',
      '* base'
    ].join('\n'))
  })
})
