/**
 * Log lines and the live progress display. Log lines go to stdout, each
 * prefixed with the time. On a terminal, a transfer in progress is one line
 * on stderr, redrawn at most four times a second and erased before any log
 * line, so the two never mix. Off a terminal there is no progress display.
 */
import type { FetchProgress } from '../src/index.js'
import type { Io } from './io.js'
import { printable, transferText } from './output.js'

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
    const text = `receiving from ${printable(peer)}: ${transferText(p, (now - this.started.get(peer)!) / 1000)}`
    this.io.err(`\r\x1b[K${text.slice(0, (this.io.columns ?? 100) - 1)}`)
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
