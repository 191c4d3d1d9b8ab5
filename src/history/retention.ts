/**
 * Retention: which commits keep their content, by restic's `forget`
 * policies (keep the last n, those within a duration, one per hour, day,
 * week, month or year for the last n of each). Pure: commits and a policy
 * in, the commits to keep out. A commit not kept loses its content only;
 * its metadata stays, so `left log` still shows it (see store/interface.ts).
 */
import { UsageError } from '../errors.js'

/** A retention policy; every rule adds commits to keep. Field names are those of `.left/config`. */
export interface RetentionPolicy {
  /** The newest n commits. */
  readonly keepLast?: number
  /** Commits made within this long of the newest one: `30d`, `1y6m`, `2w`, `12h` (y, m for months, w, d, h). */
  readonly keepWithin?: string
  /** For the newest n hours (days, ...) that have commits, the newest commit of each. */
  readonly keepHourly?: number
  readonly keepDaily?: number
  readonly keepWeekly?: number
  readonly keepMonthly?: number
  readonly keepYearly?: number
}

/** The policy's counting rules, in the order restic lists them. */
const BUCKET_RULES = ['keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'] as const

/** Every field of a policy: `keepWithin` is a duration, the others counts. */
export const POLICY_FIELDS = ['keepLast', 'keepWithin', ...BUCKET_RULES] as const

/** A commit as retention sees it. */
export interface Dated {
  readonly id: string
  /** Milliseconds since the epoch. */
  readonly time: number
}

/** Throws UsageError unless `policy` is well formed, has no unknown fields, and keeps something. */
export function checkPolicy(policy: RetentionPolicy): void {
  const unknown = Object.keys(policy).filter((k) => !(POLICY_FIELDS as readonly string[]).includes(k))
  if (unknown.length > 0) throw new UsageError(`unknown retention rule ${JSON.stringify(unknown[0])}; the rules are ${POLICY_FIELDS.join(', ')}`)
  const counts = ['keepLast', ...BUCKET_RULES] as const
  for (const name of counts) {
    const n = policy[name]
    if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new UsageError(`${name} must be a whole number of at least 1, not ${JSON.stringify(n)}`)
  }
  if (policy.keepWithin !== undefined) parseDuration(policy.keepWithin)
  if (counts.every((name) => policy[name] === undefined) && policy.keepWithin === undefined) {
    throw new UsageError('a retention policy needs at least one rule (keep-last, keep-within, keep-hourly, keep-daily, keep-weekly, keep-monthly, keep-yearly)')
  }
}

/** A duration as `{ years, months, weeks, days, hours }`; throws UsageError for anything else. */
export function parseDuration(text: string): { years: number; months: number; weeks: number; days: number; hours: number } {
  const out = { years: 0, months: 0, weeks: 0, days: 0, hours: 0 }
  if (!/^(\d+[ymwdh])+$/.test(text)) throw new UsageError(`not a duration: ${JSON.stringify(text)} (write it like 30d, 2w, 1y6m or 12h)`)
  const unit = { y: 'years', m: 'months', w: 'weeks', d: 'days', h: 'hours' } as const
  for (const [, n, u] of text.matchAll(/(\d+)([ymwdh])/g)) out[unit[u as keyof typeof unit]] += Number(n)
  return out
}

/**
 * The ids of the commits `policy` keeps, newest first, each with the rules
 * that keep it. `commits` should come in log order (newest first, a child
 * before its parents), which decides between equal times. Time buckets are
 * in the machine's local time, as restic's are.
 */
export function keptBy(commits: readonly Dated[], policy: RetentionPolicy): Map<string, string[]> {
  checkPolicy(policy)
  // Newest first. The sort is stable, so commits made in the same
  // millisecond keep the caller's order: log order, a child before its parents.
  const sorted = [...commits].sort((a, b) => b.time - a.time)
  const kept = new Map<string, string[]>()
  const keep = (id: string, why: string): void => {
    const reasons = kept.get(id) ?? []
    reasons.push(why)
    kept.set(id, reasons)
  }
  sorted.slice(0, policy.keepLast ?? 0).forEach((c) => keep(c.id, 'last'))
  if (policy.keepWithin !== undefined && sorted.length > 0) {
    const d = parseDuration(policy.keepWithin)
    const cutoff = new Date(sorted[0]!.time)
    cutoff.setFullYear(cutoff.getFullYear() - d.years, cutoff.getMonth() - d.months, cutoff.getDate() - d.days - 7 * d.weeks)
    cutoff.setHours(cutoff.getHours() - d.hours)
    for (const c of sorted) if (c.time >= cutoff.getTime()) keep(c.id, 'within')
  }
  for (const rule of BUCKET_RULES) {
    let left = policy[rule] ?? 0
    let last: string | undefined
    for (const c of sorted) {
      if (left === 0) break
      const bucket = bucketOf(rule, new Date(c.time))
      if (bucket === last) continue
      last = bucket
      left--
      keep(c.id, rule.slice(4).toLowerCase())
    }
  }
  return kept
}

/** The hour, day, ISO week, month or year a time falls in, as text. */
function bucketOf(rule: typeof BUCKET_RULES[number], t: Date): string {
  const y = t.getFullYear()
  const m = t.getMonth() + 1
  const d = t.getDate()
  switch (rule) {
    case 'keepHourly': return `${y}-${m}-${d} ${t.getHours()}`
    case 'keepDaily': return `${y}-${m}-${d}`
    case 'keepWeekly': {
      // ISO 8601: the week belongs to the year of its Thursday.
      const thursday = new Date(y, t.getMonth(), d + 3 - ((t.getDay() + 6) % 7))
      const firstThursday = new Date(thursday.getFullYear(), 0, 4)
      const week = 1 + Math.round(((thursday.getTime() - firstThursday.getTime()) / 86_400_000 - 3 + ((firstThursday.getDay() + 6) % 7)) / 7)
      return `${thursday.getFullYear()}-W${week}`
    }
    case 'keepMonthly': return `${y}-${m}`
    case 'keepYearly': return `${y}`
  }
}
