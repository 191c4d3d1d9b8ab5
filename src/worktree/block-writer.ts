/**
 * Batches new blocks into atomic store writes, in the order they were made.
 * Callers add a node only after everything it links to, so every batch that
 * lands keeps the store's closure invariant. Blocks already stored, or already
 * written in this run, are skipped: that is where deduplication happens.
 */
import { type Block, cidKey } from '../object/index.js'
import type { ObjectStore } from '../store/index.js'

/** Flush once this many bytes are pending: bounds memory during big commits. */
const FLUSH_BYTES = 4 * 1024 * 1024

/** Collects blocks and writes them to the store in ordered batches. */
export class BlockWriter {
  private pending: Block[] = []
  private pendingBytes = 0
  private readonly seen = new Set<string>()
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
    if (this.pendingBytes >= FLUSH_BYTES) {
      // Wait only for the batch before this one: one batch is written while
      // the next fills, so hashing and LevelDB overlap and at most two
      // batches are held.
      const previous = this.writing
      void this.flush().catch(() => {})
      await previous
    }
  }

  /**
   * Writes everything queued so far in one atomic batch. Batches are chained
   * so they land in the order they were cut, even when adders run concurrently.
   */
  flush(): Promise<void> {
    const store = this.store
    if (store === undefined || this.pending.length === 0) return this.writing
    const blocks = this.pending
    this.pending = []
    this.pendingBytes = 0
    this.writing = this.writing.then(async () => {
      const present = await store.hasMany(blocks.map((b) => b.cid))
      const fresh = blocks.filter((_, i) => !present[i])
      for (const b of fresh) this.bytesWritten += b.bytes.length
      await store.putBlocks(fresh)
    })
    return this.writing
  }
}
