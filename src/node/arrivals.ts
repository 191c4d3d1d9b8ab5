/**
 * Content on its way into the store while this node fetches heads, so a
 * session can hold a peer's want for it instead of answering `missing`
 * (sync/serve.ts). Only a peer that says it fetches the same head is held
 * for: then the object is part of that head, and so of our fetch too. A
 * waiter settles when the object is stored, when our fetch of that head
 * ends, or after HOLD_MS, whichever comes first; then the want is answered
 * from the store as it stands.
 */
import type { CID } from 'multiformats/cid'
import { cidKey } from '../object/cid.js'

/**
 * The longest a want is held: well under the 30 s a peer waits for an
 * answer before it takes the session for stalled.
 */
export const HOLD_MS = 20_000

/** Most objects waited for at once, over all sessions: past it, wants are answered as they stand. */
export const MAX_WAITERS = 8192

interface Waiter {
  readonly promise: Promise<void>
  readonly resolve: () => void
  /** The heads whose fetches it waits on (cidKeys): the askers' heads. */
  readonly heads: Set<string>
}

export class Arrivals {
  /** Fetches in progress, per head (cidKey). */
  private readonly fetches = new Map<string, number>()
  private readonly waiters = new Map<string, Waiter>()

  constructor(private readonly holdMs = HOLD_MS) {}

  /** A fetch of `head`'s content started. */
  begin(head: CID): void {
    const key = cidKey(head)
    this.fetches.set(key, (this.fetches.get(key) ?? 0) + 1)
  }

  /** A fetch of `head` ended: when it was the last one of that head, its waiters settle. */
  end(head: CID): void {
    const key = cidKey(head)
    const left = (this.fetches.get(key) ?? 1) - 1
    if (left > 0) {
      this.fetches.set(key, left)
      return
    }
    this.fetches.delete(key)
    for (const [cid, w] of this.waiters) {
      if (!w.heads.delete(key)) continue
      // Another asker's head is still being fetched (a waiter only ever
      // holds heads being fetched): the object may come with it.
      if (w.heads.size > 0) continue
      this.waiters.delete(cid)
      w.resolve()
    }
  }

  /** Objects just written to the store. */
  stored(cids: readonly CID[]): void {
    if (this.waiters.size === 0) return
    for (const cid of cids) {
      const key = cidKey(cid)
      const w = this.waiters.get(key)
      if (w === undefined) continue
      this.waiters.delete(key)
      w.resolve()
    }
  }

  /**
   * For a want of `cid` from a peer that fetches `peerFetching`: a promise
   * that settles once the object may be here (it never rejects), or
   * undefined when the want is to be answered at once: we do not fetch that
   * head, the peer fetches none, or too many wants are held.
   */
  arriving(cid: CID, peerFetching: CID | null): Promise<void> | undefined {
    if (peerFetching === null) return undefined
    const head = cidKey(peerFetching)
    if (!this.fetches.has(head)) return undefined
    const key = cidKey(cid)
    const known = this.waiters.get(key)
    if (known !== undefined) {
      known.heads.add(head)
      return known.promise
    }
    if (this.waiters.size >= MAX_WAITERS) return undefined
    let resolve!: () => void
    const promise = new Promise<void>((r) => { resolve = r })
    const timer = setTimeout(() => {
      if (this.waiters.get(key)?.promise === promise) this.waiters.delete(key)
      resolve()
    }, this.holdMs)
    timer.unref()
    const w: Waiter = { promise, resolve: () => { clearTimeout(timer); resolve() }, heads: new Set([head]) }
    this.waiters.set(key, w)
    return promise
  }
}
