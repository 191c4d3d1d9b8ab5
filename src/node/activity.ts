/**
 * What a running node is doing right now, for `left status`: several things
 * can run at once (two fetches, a commit waiting for an apply), so each
 * piece of work is counted while it runs and the most telling one is shown.
 */

/** The kinds of work, most telling last. */
const ORDER = ['fetching', 'committing', 'applying'] as const

/** A kind of work a node does. */
export type Work = (typeof ORDER)[number]

/** The node's current state and since when (ms since the epoch). */
export interface ActivityState {
  readonly state: Work | 'idle'
  readonly since: number
}

/** Counts the work in progress. */
export class Activity {
  private readonly running = new Map<Work, number>()
  private current: ActivityState = { state: 'idle', since: Date.now() }

  /** Runs `fn`, counting it as `work` while it runs. */
  async during<T>(work: Work, fn: () => Promise<T>): Promise<T> {
    this.running.set(work, (this.running.get(work) ?? 0) + 1)
    this.update()
    try {
      return await fn()
    } finally {
      this.running.set(work, this.running.get(work)! - 1)
      this.update()
    }
  }

  /** What runs now. */
  get state(): ActivityState {
    return this.current
  }

  private update(): void {
    let state: ActivityState['state'] = 'idle'
    for (const w of ORDER) if ((this.running.get(w) ?? 0) > 0) state = w
    if (state !== this.current.state) this.current = { state, since: Date.now() }
  }
}
