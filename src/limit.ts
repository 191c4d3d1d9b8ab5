/**
 * Bounded concurrency, for every module that overlaps I/O, and a token
 * bucket, for the per-peer rate limits. Pure: no I/O of its own.
 */

/**
 * Runs `fn` over `items`, at most `limit` at once. After the first failure
 * no new item starts; it waits for the running ones to finish and then
 * rethrows that failure, so nothing is still running when it settles.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let failure: { error: unknown } | undefined
  const lane = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!
      try {
        await fn(item)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, lane))
  if (failure !== undefined) throw failure.error
}

/**
 * A token bucket: holds at most `burst` tokens and gains `perSecond` a
 * second. Pure: the caller passes the clock, so tests need no timers.
 */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(readonly burst: number, readonly perSecond: number, now: number) {
    this.tokens = burst
    this.last = now
  }

  /**
   * Takes one token and returns 0 when there is one at `now` (ms);
   * otherwise takes nothing and returns how many ms until there will be.
   */
  take(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.last) * this.perSecond) / 1000)
    this.last = now
    if (this.tokens >= 1) {
      this.tokens -= 1
      return 0
    }
    return Math.ceil(((1 - this.tokens) * 1000) / this.perSecond)
  }
}
