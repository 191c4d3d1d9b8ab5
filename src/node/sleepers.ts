/**
 * Sleeps that can be cut short: a dialer waiting out its backoff is woken by
 * `left resume` or by the node stopping, and waitInSync by any change it
 * cares about. One set of sleepers, woken all at once.
 */

/** Waits that end after their time or at the next `wakeAll`, whichever comes first. */
export class Sleepers {
  private readonly waiting = new Set<() => void>()

  /** Resolves after `ms`, or earlier at `wakeAll`. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer)
        this.waiting.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      this.waiting.add(wake)
    })
  }

  /** Ends every sleep now. */
  wakeAll(): void {
    for (const wake of [...this.waiting]) wake()
  }
}
