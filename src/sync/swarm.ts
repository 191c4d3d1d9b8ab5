/**
 * Content from several peers at once. For each object the caller lists the
 * peers to ask, in order (usually by `rankPeers`, a rendezvous hash of the
 * CID with the peer's id: the requests spread evenly over the peers, and
 * the order is the same on every call, so no bookkeeping is needed). The
 * first is asked; when it lacks the object, hangs up, or sends bytes that
 * are not the object, the next one is. When it has answered nothing for a
 * while, or keeps the request back while it answers later ones, the next
 * one is asked as well and the first good answer wins, so a stalled peer
 * costs seconds, not the transfer.
 *
 * Pure apart from a timer: the peers are BlockSources (sessions, in the
 * node), listed afresh at every step, so a peer that joins is used at once.
 */
import type { CID } from 'multiformats/cid'
import { HashMismatchError, type LeftError, MissingObjectError, ProtocolError, TimeoutError } from '../errors.js'
import { verifyBytes } from '../object/cid.js'
import type { BlockSource } from './content.js'

/** One peer the swarm may ask. */
export interface SwarmPeer {
  /** Its peer id: what the rendezvous hash ranks. */
  readonly id: string
  readonly source: BlockSource
  /**
   * When it last answered any request of ours (ms since the epoch): a peer
   * that keeps answering is busy, not stalled. Chatter does not count, or a
   * peer could hold a request for ever by talking.
   */
  lastAnswer(): number
  /** It sent bytes that are not the object it was asked for, or a block that breaks the protocol: it cannot be trusted with the rest. */
  distrust(err: LeftError): void
}

/** How long a peer may go without answering any request of ours, one of them pending, before the next peer is asked too. */
export const DEFAULT_HEDGE_MS = 5_000

/**
 * How many hedge periods, from the ask, a peer may hold one request that
 * it has passed over by answering later ones, before the next peer is
 * asked too: a peer passing on a head it is still fetching answers late by
 * design, but a slow link answers in order and is never hedged for being
 * slow. Under the 20 s a holder keeps a want (node/arrivals.ts), so the
 * next peer is asked before the hold runs out.
 */
const HOLD_LIMIT = 3

/**
 * How many hedge periods every peer asked may hold a request so, once no
 * other peer is left to ask, before it fails: a peer that answers all
 * else must not hold an object forever.
 */
const GIVE_UP = 24

/** One request put to one peer. */
interface Ask {
  readonly peer: SwarmPeer
  /** Its place among this source's requests, in the order asked. */
  readonly seq: number
  /** When it was asked. */
  readonly since: number
  /** The peer has answered a request asked after this one. */
  overtaken: boolean
  done: boolean
}

/** A BlockSource over the peers `peers(cid)` lists, in that order, at each step of each request. */
export class SwarmSource implements BlockSource {
  /** Answers are checked against their CID here, where the sender is known. */
  readonly verified = true
  private asked = 0
  /** Per peer (its source), the newest of our requests it has answered. */
  private readonly newestAnswered = new WeakMap<BlockSource, number>()

  constructor(private readonly peers: (cid: CID) => readonly SwarmPeer[], private readonly hedgeMs = DEFAULT_HEDGE_MS) {}

  /**
   * Resolves with `cid`'s bytes, verified, from the first peer that sends
   * them. Rejects with MissingObjectError when no peer was listed or one
   * said it lacks the object and none had it; with TimeoutError when every
   * peer asked kept it back while answering later requests, or answered
   * nothing, for GIVE_UP hedge periods; or else with the error of the last
   * peer asked (a closed session, a wrong object).
   */
  request(cid: CID): Promise<Uint8Array> {
    const asks: Ask[] = []
    let settled = false
    let timer: NodeJS.Timeout | undefined
    let missing = false
    let lastError: unknown
    return new Promise((resolve, reject) => {
      const fail = (err: unknown): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        reject(err)
      }
      const finished = (ask: Ask): void => {
        ask.done = true
        const source = ask.peer.source
        if ((this.newestAnswered.get(source) ?? -1) < ask.seq) this.newestAnswered.set(source, ask.seq)
      }
      /** Notes, for each request still out, whether its peer has answered a later one. */
      const overtaken = (): void => {
        for (const a of asks) if (!a.done && (this.newestAnswered.get(a.peer.source) ?? -1) > a.seq) a.overtaken = true
      }
      const answered = (ask: Ask, bytes: Uint8Array): void => {
        finished(ask)
        // Checked even when another peer answered first: a liar is a liar.
        if (!verifyBytes(cid, bytes)) {
          distrust(ask.peer, new HashMismatchError(cid.toString()))
          return
        }
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(bytes)
      }
      const refused = (ask: Ask, err: unknown): void => {
        ask.done = true
        // A block that does not inflate, or is too big: the sender broke the
        // protocol. distrust asks the next peer itself.
        if (err instanceof ProtocolError) {
          distrust(ask.peer, err)
          return
        }
        if (err instanceof MissingObjectError) {
          finished(ask)
          missing = true
        } else lastError = err
        next()
      }
      const distrust = (peer: SwarmPeer, err: LeftError): void => {
        lastError = err
        peer.distrust(err)
        next()
      }
      const next = (): void => {
        if (settled) return
        clearTimeout(timer)
        const peer = this.peers(cid).find((p) => !asks.some((a) => a.peer.source === p.source))
        if (peer === undefined) {
          const now = Date.now()
          overtaken()
          const out = asks.filter((a) => !a.done)
          if (out.length === 0) fail(missing || lastError === undefined ? new MissingObjectError(cid.toString()) : lastError)
          else if (out.every((a) => now - (a.overtaken ? a.since : Math.max(a.peer.lastAnswer(), a.since)) >= GIVE_UP * this.hedgeMs)) {
            fail(new TimeoutError(`the peers asked for ${cid} kept it back or stopped answering`))
          }
          // Still waiting on someone: look again later, for a peer that joined or a verdict.
          else timer = setTimeout(next, this.hedgeMs)
          return
        }
        const since = Date.now()
        const ask: Ask = { peer, seq: this.asked++, since, overtaken: false, done: false }
        asks.push(ask)
        const watch = (): void => {
          if (settled) return
          const now = Date.now()
          overtaken()
          // Still answering: busy, not stalled; unless it has kept this
          // one back for too long.
          const quiet = now - Math.max(peer.lastAnswer(), since)
          const heldUntil = ask.overtaken ? since + HOLD_LIMIT * this.hedgeMs : Infinity
          if (quiet < this.hedgeMs && now < heldUntil) timer = setTimeout(watch, Math.min(this.hedgeMs - quiet, heldUntil - now))
          else next()
        }
        timer = setTimeout(watch, this.hedgeMs)
        let answer: Promise<Uint8Array>
        try {
          answer = peer.source.request(cid)
        } catch (err) {
          answer = Promise.reject(err)
        }
        // Whatever a callback throws (a listener of the session that ends)
        // fails this request instead of going unhandled.
        answer.then((bytes) => answered(ask, bytes), (err: unknown) => refused(ask, err)).catch(fail)
      }
      next()
    })
  }
}

/**
 * The order in which a peer with id `self` asks for `cid` of a head it
 * fetches, given the peers that `have` the head and those also `fetching`
 * it (docs/protocol.md, "Which peers are asked"): if one of the fetching
 * peers ranks above us, the top one of them first, since it holds our want
 * until the object reaches it; then the peers that have it, best ranked
 * first. Ranks only rise along a chain of such requests, so no two peers
 * wait on each other.
 */
export function headOrder<P extends { readonly id: string }>(cid: CID, self: string, have: readonly P[], fetching: readonly P[]): P[] {
  const top = rankPeers(cid, [...fetching, { id: self }])[0]!
  const first = top.id === self ? [] : [top as P]
  return [...first, ...rankPeers(cid, have)]
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
