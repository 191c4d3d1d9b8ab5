/** A promise-chain mutex: serializes the operations that move HEAD or touch the folder. */

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
