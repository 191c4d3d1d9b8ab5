/**
 * Log lines and the live progress displays. Log lines go to stdout, each
 * prefixed with the time. On a terminal, a transfer or a long local
 * operation in progress is one line on stderr, fitted to the terminal's
 * width, redrawn at most four times a second and erased before any log line
 * and at the end, so the two never mix. Off a terminal, or with -q, there is
 * no progress display.
 */
import type { FetchProgress, Progress } from '../src/index.js'
import type { Io } from './io.js'
import { type TransferTotals, fitLine, formatBytes, formatSeconds, printable, transferParts } from './output.js'

const REDRAW_MS = 250

/** The transfer display of one command. */
export class ProgressLine {
  private readonly live: boolean
  private shown = false
  private lastDraw = 0
  private readonly started = new Map<string, number>()

  constructor(private readonly io: Io, enabled: boolean) {
    this.live = enabled && io.stderrIsTTY
  }

  /** Prints a log line (time-stamped), erasing the progress line first. Names in it may come from peers, so it is made printable. */
  log(line: string): void {
    this.clear()
    this.io.out(`${new Date().toISOString().slice(11, 19)} ${printable(line)}\n`)
  }

  /** Reports a fetch's running totals. */
  update(peer: string, p: FetchProgress): void {
    const now = Date.now()
    if (!this.started.has(peer)) this.started.set(peer, now)
    if (!this.live || now - this.lastDraw < REDRAW_MS) return
    this.lastDraw = now
    const text = fitLine(`receiving from ${printable(peer)}`, transferParts(p, (now - this.started.get(peer)!) / 1000), this.io.columns ?? 80)
    this.io.err(`\r\x1b[K${text}`)
    this.shown = true
  }

  /** The fetch from `peer` ended. */
  done(peer: string): void {
    this.started.delete(peer)
    this.clear()
  }

  /** Erases the progress line if it is shown. */
  clear(): void {
    if (!this.shown) return
    this.io.err('\r\x1b[K')
    this.shown = false
  }
}

/**
 * The progress of one local operation (commit, checkout, restore, fsck,
 * gc): `committing: 1204 files, 512.0 MiB, 120.0 MiB/s`, with `of N`
 * and an ETA once the total is known. It counts what it is told: files
 * hashed or written, objects read.
 */
export class WorkLine {
  private readonly live: boolean
  private shown = false
  private lastDraw = 0
  private readonly started = Date.now()
  private done = { items: 0, bytes: 0 }
  private total: { items: number; bytes: number } | undefined
  private fetchStarted: number | undefined

  constructor(private readonly io: Io, private readonly verb: string, private readonly unit: 'files' | 'objects', enabled: boolean) {
    this.live = enabled && io.stderrIsTTY
  }

  /** The hooks to hand to the repo operation. */
  get hooks(): Progress {
    const step = (bytes: number): void => this.step(bytes)
    return {
      onHash: (_path, size) => step(size),
      onWrite: (_path, size) => step(size),
      onObject: step,
      onPlan: (items, bytes) => { this.total = { items, bytes } }
    }
  }

  /**
   * Content being fetched from a peer before anything is written (checkout,
   * restore of a version whose content is not here): drawn as a transfer,
   * in place of the line until writing starts.
   */
  fetching(p: TransferTotals): void {
    const now = Date.now()
    this.fetchStarted ??= now
    if (!this.live || now - this.lastDraw < REDRAW_MS) return
    this.lastDraw = now
    this.io.err(`\r\x1b[K${fitLine('fetching', transferParts(p, (now - this.fetchStarted) / 1000), this.io.columns ?? 80)}`)
    this.shown = true
  }

  /** One more item of `bytes` done. */
  step(bytes: number): void {
    this.done = { items: this.done.items + 1, bytes: this.done.bytes + bytes }
    const now = Date.now()
    if (!this.live || now - this.lastDraw < REDRAW_MS) return
    this.lastDraw = now
    this.io.err(`\r\x1b[K${this.text(now)}`)
    this.shown = true
  }

  /** The line as it would be drawn at `now`. */
  text(now: number): string {
    const seconds = Math.max(0.001, (now - this.started) / 1000)
    const rate = this.done.bytes / seconds
    const t = this.total
    const parts = [
      `${this.done.items}${t === undefined ? '' : ` of ${t.items}`} ${this.unit}`,
      `${formatBytes(this.done.bytes)}${t === undefined ? '' : ` of ${formatBytes(t.bytes)}`}`,
      `${formatBytes(Math.round(rate))}/s`
    ]
    if (t !== undefined && rate > 0 && t.bytes > this.done.bytes) parts.push(`ETA ~${formatSeconds((t.bytes - this.done.bytes) / rate)}`)
    return fitLine(this.verb, parts, this.io.columns ?? 80)
  }

  /** A warning on stderr, with the line erased first so the two do not mix. */
  warn(line: string): void {
    this.clear()
    this.io.warn(line)
  }

  /** Erases the line, if it is shown; call when the operation ends, however it ends. */
  clear(): void {
    if (!this.shown) return
    this.io.err('\r\x1b[K')
    this.shown = false
  }
}
