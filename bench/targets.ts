/**
 * Issue 9's targets as one run of `npm run bench` meets or misses them.
 * Each section adds what it measured as it goes, and the run prints them
 * together at the end, in the issue's order, so that every mark comes
 * from the same run on the same machine. A target whose figures need a
 * section that did not run is left out.
 */
import { fmt, printTable } from './lib.js'

/** Own memory every role should stay under, and total RSS while 1 GiB moves (issue 9, target 8). */
export const OWN_LIMIT = 150e6
export const TOTAL_LIMIT = 512e6

/** A target's number in issue 9, or its "done when". */
type Which = number | 'done when'

interface Row {
  readonly n: Which
  readonly target: string
  readonly figure: string
  readonly met: boolean
}

/** The marks of one run. */
export class Targets {
  private readonly rows: Row[] = []
  private readonly own: Array<[string, number]> = []
  private readonly total: Array<[string, number]> = []
  private readonly figures = new Map<string, number>()

  /** Marks target `n` of issue 9 (or its "done when") as met or missed by `figure`. */
  add(n: Which, target: string, figure: string, met: boolean): void {
    this.rows.push({ n, target, figure, met })
  }

  /** The own memory (anonymous RSS) of a LEFT process in some role. */
  ownMemory(role: string, anon: number): void {
    this.own.push([role, anon])
  }

  /** The RSS of a LEFT process while a 1 GiB file moves. */
  totalMemory(role: string, rss: number): void {
    this.total.push([role, rss])
  }

  /** Keeps a figure for a target that another section marks (seconds). */
  set(name: string, seconds: number): void {
    this.figures.set(name, seconds)
  }

  get(name: string): number | undefined {
    return this.figures.get(name)
  }

  /** Prints the table; nothing when no section added a mark. */
  print(): void {
    const rows = [...this.rows]
    const highest = (xs: ReadonlyArray<[string, number]>): [string, number] | undefined => xs.reduce<[string, number] | undefined>((w, x) => (w === undefined || x[1] > w[1] ? x : w), undefined)
    const own = highest(this.own)
    if (own !== undefined) rows.push({ n: 8, target: `own memory under ${fmt.mb(OWN_LIMIT)} in every role`, figure: `highest: ${own[0]}, ${fmt.mb(own[1])}`, met: own[1] < OWN_LIMIT })
    const total = highest(this.total)
    if (total !== undefined) rows.push({ n: 8, target: `total RSS under ${fmt.mb(TOTAL_LIMIT)} while 1 GiB moves`, figure: `highest: ${total[0]}, ${fmt.mb(total[1])}`, met: total[1] < TOTAL_LIMIT })
    if (rows.length === 0) return
    // Stable: within a target, in the order measured.
    const order = (w: Which): number => (w === 'done when' ? Infinity : w)
    rows.sort((a, b) => order(a.n) - order(b.n))
    printTable('Issue 9 targets, this run', ['#', 'target', 'figure', ''], rows.map((r) => [String(r.n), r.target, r.figure, r.met ? 'met' : 'missed']))
  }
}
