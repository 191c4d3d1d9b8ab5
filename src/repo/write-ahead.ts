/**
 * Writing a peer's files ahead of its head. A fetch reports each changed
 * file once all its content is stored (sync/content.ts `onReady`); when the
 * head is a fast-forward of ours, such a file is written into the folder at
 * once, as integrate would write it, instead of after the last byte of the
 * whole head: a folder of small files added beside a 1 GB one is usable
 * while the big one still moves. HEAD moves only when integrate runs.
 *
 * Until then each such file is "in transit": while it keeps the stat it was
 * written with, a snapshot gives it HEAD's entry (worktree/snapshot.ts
 * `inTransit`), so no commit, status or diff takes it for a local edit, and
 * nothing is echoed back to the peers. An edit made to it meanwhile changes
 * its stat and is an edit like any other. Its stat cache entry is the truth
 * (the peer's version), so integrate finds it already written
 * (worktree/materialize.ts). The in-transit list lives in memory only: after
 * a crash the files are in the folder with HEAD still behind, the next
 * commit records them as a local change, and the merge with the peer's head
 * finds the same change on both sides. Nothing is lost or mixed.
 */
import type { CID } from 'multiformats/cid'
import type { StatEntry } from '../store/index.js'
import type { Change } from '../tree/diff.js'

/** Files written ahead at most per head: the in-transit list is held in memory, and past this integrate writes the rest. */
export const WRITE_AHEAD_MAX_FILES = 50_000

/** Files written ahead of their heads, by share path, with the stat entry each was written with. */
export class InTransit {
  private readonly entries = new Map<string, StatEntry>()

  get size(): number {
    return this.entries.size
  }

  /** The stat entry `path` was written ahead with, if it is in transit. */
  get(path: string): StatEntry | undefined {
    return this.entries.get(path)
  }

  set(path: string, entry: StatEntry): void {
    this.entries.set(path, entry)
  }

  /** Forgets `path` unless a later write ahead has put another entry there. */
  release(path: string, entry: StatEntry): void {
    if (this.entries.get(path) === entry) this.entries.delete(path)
  }
}

/**
 * Writes the changes of one incoming head ahead of it, in batches: what
 * became ready while the last batch was written goes in the next.
 * `write` writes one batch and returns the stat entries of what it wrote;
 * it returns undefined once writing ahead no longer applies (HEAD moved,
 * or the head is not a fast-forward), and then nothing more is written.
 * A failure stops writing ahead too: integrate writes the rest, and says
 * what went wrong.
 */
export class WriteAhead {
  private queue: Change[] = []
  private draining: Promise<void> | undefined
  private stopped = false
  /** What this head wrote ahead and put in transit. */
  private readonly written = new Map<string, StatEntry>()

  constructor(
    /** HEAD's tree when the fetch began: what the fetch diffs the head against. */
    readonly base: CID | undefined,
    private readonly inTransit: InTransit,
    private readonly write: (changes: readonly Change[]) => Promise<Map<string, StatEntry> | undefined>
  ) {}

  /** Files written ahead so far. */
  get files(): number {
    return this.written.size
  }

  /** Queues a file whose content is all stored; returns at once. */
  ready(change: Change): void {
    if (this.stopped || change.after?.kind !== 'file') return
    // A file replacing a directory or a link waits for integrate, which removes the old one first.
    if (change.before !== undefined && change.before.kind !== 'file') return
    this.queue.push(change)
    this.draining ??= this.drain().finally(() => { this.draining = undefined })
  }

  /** Resolves when every queued file has been written (or given up). */
  async settle(): Promise<void> {
    while (this.draining !== undefined) await this.draining
  }

  /** Takes this head's files out of transit: integrate has run, or the fetch failed. Nothing more is written. */
  end(): void {
    this.stopped = true
    this.queue = []
    for (const [path, entry] of this.written) this.inTransit.release(path, entry)
    this.written.clear()
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.stopped) {
      const room = WRITE_AHEAD_MAX_FILES - this.written.size
      const batch = this.queue.splice(0, Math.max(0, room))
      this.queue = []
      if (batch.length === 0) {
        this.stopped = true
        return
      }
      let stat: Map<string, StatEntry> | undefined
      try {
        stat = await this.write(batch)
      } catch {
        stat = undefined
      }
      // Ended while this batch was written: its files leave transit with the rest.
      if (stat === undefined || this.stopped) {
        this.stopped = true
        if (stat !== undefined) for (const [path, entry] of stat) this.inTransit.release(path, entry)
        return
      }
      for (const [path, entry] of stat) this.written.set(path, entry)
    }
  }
}
