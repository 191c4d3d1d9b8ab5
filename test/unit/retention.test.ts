import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { checkPolicy, keptBy, parseDuration } from '../../src/history/retention.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
/** Local noon on 2026-03-10 (a Tuesday), so day buckets never straddle midnight. */
const T0 = new Date(2026, 2, 10, 12).getTime()

/** One commit every `step` ms going back from T0, newest first: c0, c1, ... */
function series(n: number, step: number): Array<{ id: string; time: number }> {
  return Array.from({ length: n }, (_, i) => ({ id: `c${i}`, time: T0 - i * step }))
}

const ids = (m: Map<string, string[]>): string[] => [...m.keys()].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))

describe('history/retention', () => {
  it('keep-last keeps the newest n, whatever order the commits come in', () => {
    const commits = series(10, HOUR)
    assert.deepEqual(ids(keptBy([...commits].reverse(), { keepLast: 3 })), ['c0', 'c1', 'c2'])
  })

  it('keep-daily keeps the newest commit of each of the last n days that have commits', () => {
    // Four commits a day (every 6 hours from noon) for five days.
    const commits = series(20, 6 * HOUR)
    const kept = keptBy(commits, { keepDaily: 3 })
    // Day 0 holds c0 (noon), c1 (06:00) and c2 (00:00); day -1's newest is c3 (18:00), day -2's c7.
    assert.deepEqual(ids(kept), ['c0', 'c3', 'c7'])
    assert.deepEqual(kept.get('c0'), ['daily'])
  })

  it('skips days without commits instead of counting them', () => {
    const commits = [{ id: 'c0', time: T0 }, { id: 'c1', time: T0 - 10 * DAY }, { id: 'c2', time: T0 - 20 * DAY }]
    assert.deepEqual(ids(keptBy(commits, { keepDaily: 2 })), ['c0', 'c1'])
  })

  it('keep-weekly counts ISO weeks, which start on Monday', () => {
    // Tuesday noon, Monday noon (same week), Sunday noon (the week before).
    const commits = [{ id: 'c0', time: T0 }, { id: 'c1', time: T0 - DAY }, { id: 'c2', time: T0 - 2 * DAY }]
    assert.deepEqual(ids(keptBy(commits, { keepWeekly: 5 })), ['c0', 'c2'])
  })

  it('keep-monthly and keep-yearly', () => {
    const commits = series(400, DAY)
    assert.equal(keptBy(commits, { keepMonthly: 4 }).size, 4)
    assert.deepEqual(ids(keptBy(commits, { keepYearly: 9 })), ['c0', `c${Math.round((T0 - new Date(2025, 11, 31, 12).getTime()) / DAY)}`])
  })

  it('keep-within keeps what lies within the duration of the newest commit, not of now', () => {
    const commits = series(10, DAY).map((c) => ({ ...c, time: c.time - 400 * DAY }))
    assert.deepEqual(ids(keptBy(commits, { keepWithin: '2d' })), ['c0', 'c1', 'c2'])
    assert.deepEqual(ids(keptBy(commits, { keepWithin: '1w' })), ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7'])
  })

  it('rules add up, and each kept commit says which rules keep it', () => {
    const kept = keptBy(series(30, DAY), { keepLast: 2, keepWeekly: 2 })
    assert.deepEqual(kept.get('c0'), ['last', 'weekly'])
    assert.deepEqual(kept.get('c1'), ['last'])
  })

  it('parses durations like restic, and refuses anything else', () => {
    assert.deepEqual(parseDuration('1y6m2w3d12h'), { years: 1, months: 6, weeks: 2, days: 3, hours: 12 })
    for (const bad of ['', '3', 'd', '1.5d', '-1d', '2 d', '1s']) assert.throws(() => parseDuration(bad), { code: 'LEFT_USAGE' }, bad)
  })

  it('refuses a policy that keeps nothing, or a count below 1', () => {
    assert.throws(() => checkPolicy({}), { code: 'LEFT_USAGE' })
    assert.throws(() => checkPolicy({ keepLast: 0 }), { code: 'LEFT_USAGE' })
    assert.throws(() => checkPolicy({ keepDaily: 1.5 }), { code: 'LEFT_USAGE' })
    assert.throws(() => checkPolicy({ keepLast: 1, keepForever: 1 } as never), /unknown retention rule "keepForever"/)
    checkPolicy({ keepWithin: '30d' })
  })
})
