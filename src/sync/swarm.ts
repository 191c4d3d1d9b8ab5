/**
 * Content from several peers at once. Each object is asked of one peer
 * that should have it, picked by rendezvous hashing of the CID with the
 * peer's id: the requests spread evenly over the peers, and the order is
 * the same on every call, so no bookkeeping is needed. When that peer
 * lacks the object, hangs up, or sends bytes that are not the object, the
 * next one is asked. When it has sent nothing for a while, the next one is
 * asked as well and the first good answer wins, so a stalled peer costs a
 * few seconds, not the transfer.
 *
 * Pure apart from a timer: the peers are BlockSources (sessions, in the
 * node), re-read on every request so a peer that joins is used at once.
 */
import type { CID } from 'multiformats/cid'
import { HashMismatchError, MissingObjectError } from '../errors.js'
import { verifyBytes } from '../object/cid.js'
import type { BlockSource } from './content.js'

/** One peer the swarm may ask. */
export interface SwarmPeer {
  /** Its peer id: what the rendezvous hash ranks. */
  readonly id: string
  readonly source: BlockSource
  /** When it last sent anything (ms since the epoch): a peer that keeps sending is busy, not stalled. */
  lastSeen(): number
  /** It sent bytes that are not the object it was asked for: it cannot be trusted with the rest. */
  distrust(err: HashMismatchError): void
}

/** How long a peer may stay silent with a request of ours before the next peer is asked too. */
export const DEFAULT_HEDGE_MS = 5_000

/** A BlockSource over every peer `peers()` returns at the moment of each request. */
export class SwarmSource implements BlockSource {
  /** Answers are checked against their CID here, where the sender is known. */
  readonly verified = true

  constructor(private readonly peers: () => readonly SwarmPeer[], private readonly hedgeMs = DEFAULT_HEDGE_MS) {}

  /**
   * Resolves with `cid`'s bytes, verified, from the first peer that sends
   * them. Rejects with MissingObjectError when every peer lacked it, or else
   * with the error of the last peer asked (a closed session).
   */
  request(cid: CID): Promise<Uint8Array> {
    const asked = new Set<string>()
    let running = 0
    let settled = false
    let timer: NodeJS.Timeout | undefined
    let missing = false
    let lastError: unknown
    return new Promise((resolve, reject) => {
      const finish = (): void => {
        settled = true
        clearTimeout(timer)
      }
      const next = (): void => {
        if (settled) return
        clearTimeout(timer)
        const peer = rankPeers(cid, this.peers()).find((p) => !asked.has(p.id))
        if (peer === undefined) {
          if (running === 0) {
            finish()
            reject(missing || lastError === undefined ? new MissingObjectError(cid.toString()) : lastError)
          }
          return
        }
        asked.add(peer.id)
        running++
        const watch = (): void => {
          if (settled) return
          // Still sending (other answers, a heartbeat): busy, not stalled.
          const quiet = Date.now() - peer.lastSeen()
          if (quiet < this.hedgeMs) timer = setTimeout(watch, this.hedgeMs - quiet)
          else next()
        }
        timer = setTimeout(watch, this.hedgeMs)
        peer.source.request(cid).then((bytes) => {
          running--
          if (settled) return
          if (verifyBytes(cid, bytes)) {
            finish()
            resolve(bytes)
            return
          }
          const err = new HashMismatchError(cid.toString())
          peer.distrust(err)
          lastError = err
          next()
        }, (err: unknown) => {
          running--
          if (settled) return
          if (err instanceof MissingObjectError) missing = true
          else lastError = err
          next()
        })
      }
      next()
    })
  }
}

/**
 * `peers` in the order to ask them for `cid`: highest rendezvous score
 * first. The score mixes the last four bytes of the CID's digest with a
 * hash of the peer id, so each peer comes first for an equal share of
 * objects, and the order of the others is just as spread.
 */
export function rankPeers<P extends { readonly id: string }>(cid: CID, peers: readonly P[]): P[] {
  const digest = cid.multihash.digest
  const n = digest.length
  const key = n >= 4 ? ((digest[n - 4]! << 24) | (digest[n - 3]! << 16) | (digest[n - 2]! << 8) | digest[n - 1]!) >>> 0 : 0
  const scored = peers.map((p) => ({ p, score: mix(key ^ idHash(p.id)) }))
  scored.sort((a, b) => b.score - a.score || (a.p.id < b.p.id ? -1 : a.p.id > b.p.id ? 1 : 0))
  return scored.map((s) => s.p)
}

/** FNV-1a of the id's UTF-16 code units. */
function idHash(id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** A bijective 32-bit finalizer (murmur3's fmix32): nearby inputs get unrelated scores. */
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
  return (x ^ (x >>> 16)) >>> 0
}
