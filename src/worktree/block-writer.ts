/**
 * Batches new blocks, and the stat cache entries that name them, into atomic
 * store writes, in the order they were made. Callers add a node only after
 * everything it links to, so every batch that lands keeps the store's
 * closure invariant; a stat entry rides in the batch of its file's blocks
 * (a directory's entry, of its node) or a later one, never before them. Blocks already stored, or already queued
 * in the same batch, are skipped: that is where deduplication happens.
 */
import type { CID } from 'multiformats/cid'
import { type Block, cidKey } from '../object/index.js'
import type { DirStat, ObjectStore, StatEntry } from '../store/index.js'

/** Flush once this many bytes are pending: bounds memory during big commits. */
const FLUSH_BYTES = 4 * 1024 * 1024
/**
 * Flush once this many blocks and stat entries are pending: a folder of
 * tiny files fills no byte budget, and one batch of 200,000 of them held
 * over a gigabyte in LevelDB's batch and its JavaScript wrappers.
 */
const FLUSH_ITEMS = 4096

/** Collects blocks and stat entries and writes them to the store in ordered batches. */
export class BlockWriter {
  private pending: Block[] = []
  private pendingBytes = 0
  private stat = new Map<string, StatEntry | null>()
  private statUnder: string[] = []
  private dirStat = new Map<string, DirStat>()
  /** Keys of the blocks pending; earlier batches are in the store, which `flush` asks. */
  private seen = new Set<string>()
  private writing: Promise<void> = Promise.resolve()
  /** Bytes of new objects written to the store. */
  bytesWritten = 0

  /** With `store` undefined (a dry run) blocks are hashed but dropped. */
  constructor(private readonly store: ObjectStore | undefined) {}

  /** Queues a block; may flush. */
  async add(block: Block): Promise<void> {
    if (this.store === undefined) return
    const key = cidKey(block.cid)
    if (this.seen.has(key)) return
    this.seen.add(key)
    this.pending.push(block)
    this.pendingBytes += block.bytes.length
    await this.maybeFlush()
  }

  /**
   * Which of `cids` the store holds, or this writer has queued. In a dry
   * run, all of them: nothing is written anyway.
   */
  async has(cids: readonly CID[]): Promise<boolean[]> {
    if (this.store === undefined) return cids.map(() => true)
    const stored = await this.store.hasMany(cids)
    return cids.map((cid, i) => stored[i]! || this.seen.has(cidKey(cid)))
  }

  /**
   * Queues a stat cache entry for `path` (null forgets it). Its file's
   * blocks must have been added already, so they land first or with it.
   */
  async setStat(path: string, entry: StatEntry | null): Promise<void> {
    if (this.store === undefined) return
    this.stat.set(path, entry)
    await this.maybeFlush()
  }

  /**
   * Queues the stat entry of directory `dir`. Its node, and the entries of
   * its files, must have been queued already: it vouches for them.
   */
  async setDirStat(dir: string, entry: DirStat): Promise<void> {
    if (this.store === undefined) return
    this.dirStat.set(dir, entry)
    await this.maybeFlush()
  }

  /** Queues forgetting every stat cache entry below directory `dir`. */
  async forgetStatUnder(dir: string): Promise<void> {
    if (this.store === undefined) return
    this.statUnder.push(dir)
    await this.maybeFlush()
  }

  private async maybeFlush(): Promise<void> {
    if (this.pendingBytes < FLUSH_BYTES && this.queued() < FLUSH_ITEMS) return
    // Wait only for the batch before this one: one batch is written while
    // the next fills, so hashing and LevelDB overlap and at most two
    // batches are held.
    const previous = this.writing
    void this.flush().catch(() => {})
    await previous
  }

  private queued(): number {
    return this.pending.length + this.stat.size + this.statUnder.length + this.dirStat.size
  }

  /** Resolves once the batches cut so far have landed or failed; what is still queued is not written. */
  settled(): Promise<void> {
    return this.writing.catch(() => {})
  }

  /**
   * Writes everything queued so far in one atomic batch. Batches are chained
   * so they land in the order they were cut, even when adders run concurrently.
   */
  flush(): Promise<void> {
    const store = this.store
    if (store === undefined || this.queued() === 0) return this.writing
    const blocks = this.pending
    const stat = this.stat
    const statUnder = this.statUnder
    const dirStat = this.dirStat
    this.pending = []
    this.pendingBytes = 0
    this.stat = new Map()
    this.statUnder = []
    this.dirStat = new Map()
    this.seen = new Set()
    this.writing = this.writing.then(async () => {
      const present = await store.hasMany(blocks.map((b) => b.cid))
      const fresh = blocks.filter((_, i) => !present[i])
      for (const b of fresh) this.bytesWritten += b.bytes.length
      await store.write({ blocks: fresh, stat, statUnder, dirStat })
    })
    return this.writing
  }
}
