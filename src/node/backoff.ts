/**
 * Retry delays for something that keeps failing: the first wait is `min`,
 * each next one doubles up to `max`, and `reset` starts over after a
 * success. Jitter spreads peers that failed together, so they do not all
 * retry at the same instant.
 */

/** Doubling delays between `min` and `max` milliseconds. */
export class Backoff {
  private current: number

  /** `jitter` 0.25 makes each delay 75% to 125% of its nominal value. */
  constructor(private readonly min: number, private readonly max: number, private readonly jitter = 0) {
    this.current = min
  }

  /** The delay to wait now, in ms; the nominal delay then doubles, up to `max`. */
  next(random: () => number = Math.random): number {
    const nominal = this.current
    this.current = Math.min(this.max, this.current * 2)
    return nominal * (1 - this.jitter + 2 * this.jitter * random())
  }

  /** After a success: the next delay is `min` again. */
  reset(): void {
    this.current = this.min
  }
}
