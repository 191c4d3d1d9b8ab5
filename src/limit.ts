/** Bounded concurrency, shared by every module that overlaps I/O. Pure: no I/O of its own. */

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
