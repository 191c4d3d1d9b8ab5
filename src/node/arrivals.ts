/**
 * Objects on their way into the store while this node fetches a head's
 * content, so the sessions can hold a peer's want for one of them instead
 * of answering `missing` (sync/serve.ts). A waiter settles when its object
 * is stored, or when the last fetch in progress ends without it; then the
 * want is answered from the store as it stands.
 */
import type { CID } from 'multiformats/cid'
import { cidKey } from '../object/cid.js'

export class Arrivals {
  /** Content fetches in progress. */
  private fetches = 0
  private readonly waiters = new Map<string, { readonly promise: Promise<void>; readonly resolve: () => void }>()

  /** A content fetch started. */
  begin(): void {
    this.fetches++
  }

  /** A content fetch ended: when it was the last, every waiter settles. */
  end(): void {
    if (--this.fetches > 0) return
    for (const w of this.waiters.values()) w.resolve()
    this.waiters.clear()
  }

  /** Objects just written to the store. */
  stored(cids: readonly CID[]): void {
    if (this.waiters.size === 0) return
    for (const cid of cids) {
      const key = cidKey(cid)
      this.waiters.get(key)?.resolve()
      this.waiters.delete(key)
    }
  }

  /** Settles once `cid` is stored or no fetch is left; undefined when nothing is being fetched. */
  arriving(cid: CID): Promise<void> | undefined {
    if (this.fetches === 0) return undefined
    const key = cidKey(cid)
    let w = this.waiters.get(key)
    if (w === undefined) {
      let resolve!: () => void
      const promise = new Promise<void>((r) => { resolve = r })
      w = { promise, resolve }
      this.waiters.set(key, w)
    }
    return w.promise
  }
}
