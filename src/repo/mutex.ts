/**
 * A promise-chain mutex, which serializes the operations that move HEAD or
 * touch the folder, and a shared lock, which keeps gc apart from fetches.
 */

/** Runs callbacks one at a time, in call order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve()

  /** Runs `fn` after every earlier `run` has settled; returns its result. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn)
    this.tail = result.catch(() => {})
    return result
  }
}

/**
 * Many holders at once, or one exclusive one: fetches share it, gc takes it
 * alone. A waiting exclusive holder goes before shared holders that come
 * after it, so a stream of fetches cannot starve gc.
 */
export class SharedLock {
  private shared = 0
  /** Settles when the exclusive holder (or the one waiting) is done. */
  private exclusiveDone: Promise<void> | undefined
  private sharedDrained: (() => void) | undefined
  private readonly exclusiveQueue = new Mutex()

  /** Runs `fn` while no exclusive holder runs or waits. */
  async withShared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusiveDone !== undefined) await this.exclusiveDone
    this.shared++
    try {
      return await fn()
    } finally {
      this.shared--
      if (this.shared === 0) this.sharedDrained?.()
    }
  }

  /** Runs `fn` once every shared holder has finished, keeping new ones out until it ends. */
  withExclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.exclusiveQueue.run(async () => {
      let release!: () => void
      this.exclusiveDone = new Promise<void>((resolve) => { release = resolve })
      try {
        if (this.shared > 0) await new Promise<void>((resolve) => { this.sharedDrained = resolve })
        this.sharedDrained = undefined
        return await fn()
      } finally {
        this.exclusiveDone = undefined
        release()
      }
    })
  }
}
