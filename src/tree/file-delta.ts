/**
 * Which parts of a file's new version its old version already holds. An
 * edit to a big file keeps most of its chunks, so the new version can be
 * written from the old file, reading only the new chunks from the store.
 * This module plans that: it lists the new version as runs, each either a
 * range of the old file or chunks to read, with the chunks each run holds
 * so the writer can check every one against its CID. It reads file nodes
 * only, never content.
 */
import type { CID } from 'multiformats/cid'
import { cidKey } from '../object/index.js'
import { fileLeaves } from './file.js'
import type { ObjectSource } from './source.js'

/** One chunk of a file, with its size as its parent declared it. */
export interface SizedLeaf {
  readonly cid: CID
  readonly size: number
}

/** One stretch of the new version, in file order, starting at byte `at`. */
export type Run =
  /** `size` bytes that the old version holds from byte `from` on: the chunks `leaves`. */
  | { readonly kind: 'old'; readonly at: number; readonly from: number; readonly size: number; readonly leaves: readonly SizedLeaf[] }
  /** Chunks that the old version lacks, one after another. */
  | { readonly kind: 'new'; readonly at: number; readonly leaves: readonly SizedLeaf[] }

/** Chunks in one `new` run: reads of that many overlap, and a run stays a few MiB at most. */
export const NEW_RUN_LEAVES = 16
/** An `old` run holds at most this many bytes (or one chunk, if bigger): the writer reads each run whole. */
export const OLD_RUN_BYTES = 4 * 1024 * 1024

/** Where each chunk of the old version sits. */
export class OldChunks {
  private readonly keys: string[] = []
  private readonly starts: number[] = []
  private readonly sizes: number[] = []
  private readonly first = new Map<string, number>()
  private end = 0

  /** Appends the old version's next chunk. */
  add(cid: CID, size: number): void {
    const key = cidKey(cid)
    if (!this.first.has(key)) this.first.set(key, this.keys.length)
    this.keys.push(key)
    this.starts.push(this.end)
    this.sizes.push(size)
    this.end += size
  }

  get count(): number {
    return this.keys.length
  }

  /**
   * The index of a chunk holding `key` of `size` bytes: `near` when that one
   * does (so a run of repeated chunks stays one run), else the one starting
   * at byte `at` (so a repeated chunk that stayed in place is found in
   * place), else the first.
   */
  find(key: string, size: number, near: number, at: number): number | undefined {
    if (this.holds(near, key, size)) return near
    const first = this.first.get(key)
    if (first === undefined) return undefined
    const here = this.startingAt(at)
    if (here !== undefined && this.holds(here, key, size)) return here
    return this.holds(first, key, size) ? first : undefined
  }

  private holds(i: number, key: string, size: number): boolean {
    return this.keys[i] === key && this.sizes[i] === size
  }

  /** The index of the chunk that starts at byte `at`, if one does. */
  private startingAt(at: number): number | undefined {
    let lo = 0
    let hi = this.starts.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const start = this.starts[mid]!
      if (start === at) return mid
      if (start < at) lo = mid + 1
      else hi = mid - 1
    }
    return undefined
  }

  start(i: number): number {
    return this.starts[i]!
  }
}

/**
 * Cuts the new version's chunks, fed in file order, into runs: chunks the
 * old version holds one after another become `old` runs (of OLD_RUN_BYTES
 * at most, unless one chunk is bigger), and the rest `new` runs of at most
 * NEW_RUN_LEAVES chunks.
 */
export class RunPlanner {
  private at = 0
  private open: { kind: 'old'; at: number; from: number; size: number; next: number; leaves: SizedLeaf[] } | { kind: 'new'; at: number; leaves: SizedLeaf[] } | undefined

  constructor(private readonly old: OldChunks) {}

  /** Adds the next chunk of the new version; returns the run it closed, if any. */
  add(leaf: SizedLeaf): Run | undefined {
    const open = this.open
    const i = this.old.find(cidKey(leaf.cid), leaf.size, open?.kind === 'old' ? open.next : -1, this.at)
    let closed: Run | undefined
    if (i !== undefined && open?.kind === 'old' && i === open.next && open.size + leaf.size <= OLD_RUN_BYTES) {
      open.size += leaf.size
      open.next++
      open.leaves.push(leaf)
    } else if (i === undefined && open?.kind === 'new' && open.leaves.length < NEW_RUN_LEAVES) {
      open.leaves.push(leaf)
    } else {
      closed = this.finish()
      this.open = i !== undefined
        ? { kind: 'old', at: this.at, from: this.old.start(i), size: leaf.size, next: i + 1, leaves: [leaf] }
        : { kind: 'new', at: this.at, leaves: [leaf] }
    }
    this.at += leaf.size
    return closed
  }

  /** Closes the open run, if any, and returns it. */
  finish(): Run | undefined {
    const open = this.open
    this.open = undefined
    if (open === undefined) return undefined
    return open.kind === 'old' ? { kind: 'old', at: open.at, from: open.from, size: open.size, leaves: open.leaves } : { kind: 'new', at: open.at, leaves: open.leaves }
  }
}

/**
 * Indexes the chunks of the file rooted at `cid`, or returns undefined when
 * it has more than `limit` of them: the index is held whole, so a file far
 * bigger than any edit is worth is written the plain way.
 */
export async function indexChunks(src: ObjectSource, cid: CID, size: number, limit: number): Promise<OldChunks | undefined> {
  const old = new OldChunks()
  for await (const leaf of fileLeaves(src, cid, size)) {
    if (old.count >= limit) return undefined
    old.add(leaf.cid, leaf.size ?? size)
  }
  return old
}

/** The runs of the file rooted at `cid`, `size` bytes, against `old`. */
export async function* fileRuns(src: ObjectSource, cid: CID, size: number, old: OldChunks): AsyncGenerator<Run> {
  const planner = new RunPlanner(old)
  for await (const leaf of fileLeaves(src, cid, size)) {
    const closed = planner.add({ cid: leaf.cid, size: leaf.size ?? size })
    if (closed !== undefined) yield closed
  }
  const last = planner.finish()
  if (last !== undefined) yield last
}
