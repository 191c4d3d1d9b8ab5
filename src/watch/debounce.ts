/**
 * Turns a stream of filesystem events into "the folder has been quiet"
 * moments. Firing waits for `quietMs` without events, so a file that is still
 * being written (a 1 GB copy emits events all along) is not snapshotted half
 * done; `maxWaitMs` bounds the wait for a folder that never goes quiet.
 */

/** Options of a Debouncer. */
export interface DebounceOptions {
  /** Fire after this long without a new event. */
  readonly quietMs: number
  /** Fire at the latest this long after the first unfired event. */
  readonly maxWaitMs: number
}

/** Coalesces events; calls `fire` once per quiet moment, never concurrently with itself. */
export class Debouncer {
  private timer: NodeJS.Timeout | undefined
  private firstEvent: number | undefined
  private running = false
  private again = false
  private closed = false

  constructor(private readonly opts: DebounceOptions, private readonly fire: () => Promise<void>) {}

  /** Records an event. */
  poke(): void {
    if (this.closed) return
    const now = Date.now()
    this.firstEvent ??= now
    const wait = Math.max(0, Math.min(this.opts.quietMs, this.firstEvent + this.opts.maxWaitMs - now))
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.run(), wait)
  }

  private async run(): Promise<void> {
    this.timer = undefined
    if (this.running) {
      // Events arrived while firing: go again once the current run ends.
      this.again = true
      return
    }
    this.firstEvent = undefined
    this.running = true
    try {
      await this.fire()
    } finally {
      this.running = false
      if (this.again && !this.closed) {
        this.again = false
        this.poke()
      }
    }
  }

  /** Cancels any pending fire. */
  close(): void {
    this.closed = true
    clearTimeout(this.timer)
  }
}
