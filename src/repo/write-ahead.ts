/**
 * Writing a peer's files ahead of its head. A fetch reports each changed
 * file once all its content is stored (sync/content.ts `onReady`); when the
 * head is a fast-forward of ours, such a file is written into the folder at
 * once, as integrate would write it, instead of after the last byte of the
 * whole head: a folder of small files added beside a 1 GB one is usable
 * while the big one still moves. HEAD moves only when integrate runs.
 *
 * Until then each such file is "in transit". While it keeps the stat it was
 * written with, and HEAD still has the version it replaced, a snapshot gives
 * it that version (worktree/snapshot.ts `inTransit`): no commit, status or
 * diff takes it for a local edit, and nothing is echoed back to the peers.
 * An edit made to it meanwhile changes its stat and is an edit like any
 * other. Its stat cache entry is the truth (the peer's version). An apply
 * that moves HEAD (integrate, checkout) never takes it for a local edit
 * either (Repo `throughTransit`): it is a peer's version, in the history
 * of a head still being taken in, which merges it in its turn.
 *
 * When the head is integrated, or given up (a failed fetch), its files
 * leave transit: what was not settled is the folder's own from then on,
 * and the next commit records it as a local change, which merges with the
 * peer's head when it comes (the same change on both sides), or keeps both
 * versions if the peer changed the file again meanwhile. The list lives in
 * memory only, so a restart ends it the same way. Nothing is lost or mixed.
 */
import type { CID } from 'multiformats/cid'
import { type DirEntry, cidFromBytes, cidKey } from '../object/index.js'
import type { Change } from '../tree/diff.js'
import type { InTransitFile } from '../worktree/snapshot.js'

/** Files written ahead at most per head: the in-transit list is held in memory, and past this integrate writes the rest. */
export const WRITE_AHEAD_MAX_FILES = 50_000

/** A file written ahead of the head that brings it. */
export interface Transit extends InTransitFile {
  /** The write-ahead it belongs to: its files leave transit together. */
  readonly owner: object
  /** What was written. */
  readonly written: DirEntry
}

/**
 * A directory entry as the in-transit list keeps it: its CID as the bytes'
 * latin1 text. A CID object takes about 700 bytes of heap, and up to
 * WRITE_AHEAD_MAX_FILES files may be in transit: kept as objects, they
 * were about a third of a 72,000-file first sync's live heap.
 */
type KeptEntry = Omit<DirEntry, 'cid'> & { readonly cid: string }

interface Kept extends Omit<Transit, 'written' | 'replaced'> {
  readonly written: KeptEntry
  readonly replaced: KeptEntry | undefined
}

function keep(entry: DirEntry): KeptEntry {
  return { ...entry, cid: cidKey(entry.cid) }
}

function unkeep(kept: KeptEntry): DirEntry {
  // A fresh buffer of its own: a CID holds on to the bytes it was decoded from.
  return { ...kept, cid: cidFromBytes(new Uint8Array(Buffer.from(kept.cid, 'latin1')))! }
}

/** Files written ahead of their heads, by share path. Changed under the repo's mutex, and when a write-ahead ends. */
export class InTransit {
  private readonly entries = new Map<string, Kept>()

  get size(): number {
    return this.entries.size
  }

  get(path: string): Transit | undefined {
    const k = this.entries.get(path)
    return k === undefined ? undefined : { ...k, written: unkeep(k.written), replaced: k.replaced && unkeep(k.replaced) }
  }

  set(path: string, transit: Transit): void {
    this.entries.set(path, { ...transit, written: keep(transit.written), replaced: transit.replaced && keep(transit.replaced) })
  }

  delete(path: string): void {
    this.entries.delete(path)
  }

  /** Takes every file of `owner` out of transit. */
  release(owner: object): void {
    for (const [path, t] of this.entries) if (t.owner === owner) this.entries.delete(path)
  }
}

/**
 * Writes one batch of files ahead, if it still may: only while `wanted()`
 * (checked under the repo's mutex, so nothing is written once the fetch
 * has ended). Resolves with how many it wrote, or undefined once writing
 * ahead no longer applies (HEAD moved, or the head is not a fast-forward).
 */
export type WriteBatch = (changes: readonly Change[], wanted: () => boolean) => Promise<number | undefined>

/**
 * Writes the changes of one incoming head ahead of it, in batches: what
 * became ready while the last batch was written goes in the next. A
 * failure stops writing ahead: integrate writes the rest, and fails the
 * same way if the cause lasts.
 */
export class WriteAhead {
  private queue: Change[] = []
  /** The drain loop, while `running`. */
  private draining: Promise<void> = Promise.resolve()
  private running = false
  private stopped = false
  private written = 0

  constructor(
    /** HEAD's tree when the fetch began: what the fetch diffs the head against. */
    readonly base: CID | undefined,
    /** Takes this head's files out of transit. */
    private readonly release: () => void,
    private readonly write: WriteBatch
  ) {}

  /** Files written ahead so far. */
  get files(): number {
    return this.written
  }

  /** Queues a file whose content is all stored; returns at once. */
  ready(change: Change): void {
    if (this.stopped || change.after?.kind !== 'file') return
    // A file replacing a directory or a link waits for integrate, which removes the old one first.
    if (change.before !== undefined && change.before.kind !== 'file') return
    this.queue.push(change)
    if (!this.running) this.draining = this.drain()
  }

  /** Resolves when every queued file has been written (or given up). */
  async settle(): Promise<void> {
    while (this.running) await this.draining
  }

  /** Writes nothing more, not even a batch waiting for the mutex. */
  stop(): void {
    this.stopped = true
    this.queue = []
  }

  /** Once the head is integrated or given up: stops, and takes its files out of transit once any batch being written has landed. */
  async end(): Promise<void> {
    this.stop()
    await this.settle()
    this.release()
  }

  private async drain(): Promise<void> {
    this.running = true
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const batch = this.queue.splice(0, Math.max(0, WRITE_AHEAD_MAX_FILES - this.written))
        this.queue = []
        const wrote = batch.length === 0 ? undefined : await this.write(batch, () => !this.stopped).catch(() => undefined)
        if (wrote === undefined) this.stopped = true
        else this.written += wrote
      }
    } finally {
      // In the same turn as the loop's last look at the queue: a file queued after it starts a new drain.
      this.running = false
    }
  }
}
