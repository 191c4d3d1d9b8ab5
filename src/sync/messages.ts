/**
 * The protocol's messages and their canonical dag-cbor encoding. Pure: every
 * message is a dag-cbor map whose `t` field names its type; decodeMessage
 * checks the whole shape (exact fields, types, CID forms, list caps) so the
 * session only ever sees well-formed values. docs/protocol.md is the spec.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { ProtocolError } from '../errors.js'
import { DAG_CBOR, isLeftCid } from '../object/cid.js'

/** The protocol version this implementation speaks, sent in `hello.v`. */
export const PROTOCOL_VERSION = 4

/** Most CIDs one `want` may carry. */
export const MAX_WANT = 256

/** Longest peer id accepted in a hello, in UTF-16 code units (commit authors allow 128). */
export const MAX_PEER_ID = 128

/** First message in both directions: who I am and what my head is. */
export interface Hello {
  readonly t: 'hello'
  readonly v: typeof PROTOCOL_VERSION
  readonly peer: string
  /** The sender's head commit, or null for a folder without commits. */
  readonly head: CID | null
}

/** Please send these objects (each answered by one `block` or `missing`). */
export interface Want {
  readonly t: 'want'
  readonly cids: readonly CID[]
}

/** One object's bytes; `z: 1` means `data` is deflate-raw compressed. */
export interface BlockMessage {
  readonly t: 'block'
  readonly cid: CID
  readonly data: Uint8Array
  readonly z: 0 | 1
}

/** The sender does not have a wanted object. */
export interface Missing {
  readonly t: 'missing'
  readonly cid: CID
}

/** The sender's head moved to this commit. */
export interface Head {
  readonly t: 'head'
  readonly cid: CID
}

/**
 * The sender is bringing in the content of this head (null: it stopped).
 * Until it says otherwise, a peer that says it fetches the same head may
 * ask it for that head's chunks: a want for one it lacks is held until the
 * chunk arrives, its fetch ends, or 20 s pass, then answered.
 */
export interface Fetching {
  readonly t: 'fetching'
  readonly cid: CID | null
}

/** The sender is closing the session on purpose. */
export interface Bye {
  readonly t: 'bye'
}

/** Any protocol message. */
export type Message = Hello | Want | BlockMessage | Missing | Head | Fetching | Bye

/** Encodes a message as canonical dag-cbor (the payload of one frame). */
export function encodeMessage(message: Message): Uint8Array {
  return dagCbor.encode(message)
}

/**
 * Decodes and validates one frame payload. Throws ProtocolError for invalid
 * CBOR, an unknown `t`, missing or extra fields, or any field out of range.
 */
export function decodeMessage(bytes: Uint8Array): Message {
  let data: unknown
  try {
    data = dagCbor.decode(bytes)
  } catch (err) {
    throw new ProtocolError('message is not valid dag-cbor', err)
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data) || data instanceof Uint8Array || isLeftCid(data)) {
    throw new ProtocolError('message is not a map')
  }
  const d = data as Record<string, unknown>
  switch (d['t']) {
    case 'hello': {
      // The version is checked before the shape, so a future version whose
      // hello has other fields still gets a clear "unsupported version".
      if (d['v'] !== PROTOCOL_VERSION) throw new ProtocolError(`peer speaks protocol version ${JSON.stringify(d['v'])}, this peer speaks ${PROTOCOL_VERSION}`)
      fields(d, ['t', 'v', 'peer', 'head'])
      const peer = d['peer']
      if (typeof peer !== 'string' || peer.length === 0 || peer.length > MAX_PEER_ID || !peer.isWellFormed()) {
        throw new ProtocolError('hello.peer must be a non-empty string')
      }
      const head = d['head'] === null ? null : commitCid(d['head'], 'hello.head')
      return { t: 'hello', v: PROTOCOL_VERSION, peer, head }
    }
    case 'want': {
      fields(d, ['t', 'cids'])
      const cids = d['cids']
      if (!Array.isArray(cids) || cids.length === 0 || cids.length > MAX_WANT) throw new ProtocolError(`want.cids must list 1 to ${MAX_WANT} CIDs`)
      return { t: 'want', cids: cids.map((c) => cid(c, 'want.cids')) }
    }
    case 'block': {
      fields(d, ['t', 'cid', 'data', 'z'])
      const data = d['data']
      if (!(data instanceof Uint8Array)) throw new ProtocolError('block.data must be bytes')
      const z = d['z']
      if (z !== 0 && z !== 1) throw new ProtocolError('block.z must be 0 or 1')
      return { t: 'block', cid: cid(d['cid'], 'block.cid'), data, z }
    }
    case 'missing':
      fields(d, ['t', 'cid'])
      return { t: 'missing', cid: cid(d['cid'], 'missing.cid') }
    case 'head':
      fields(d, ['t', 'cid'])
      return { t: 'head', cid: commitCid(d['cid'], 'head.cid') }
    case 'fetching':
      fields(d, ['t', 'cid'])
      return { t: 'fetching', cid: d['cid'] === null ? null : commitCid(d['cid'], 'fetching.cid') }
    case 'bye':
      fields(d, ['t'])
      return { t: 'bye' }
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(String(d['t']))}`)
  }
}

function fields(d: Record<string, unknown>, keys: readonly string[]): void {
  const actual = Object.keys(d)
  if (actual.length !== keys.length || !keys.every((k) => Object.hasOwn(d, k))) {
    throw new ProtocolError(`${String(d['t'])} must have exactly the fields ${keys.join(', ')}`)
  }
}

function cid(value: unknown, what: string): CID {
  if (!isLeftCid(value)) throw new ProtocolError(`${what} is not a CIDv1 sha2-256 raw/dag-cbor CID`)
  return value
}

/** Heads are commits, and commits are always dag-cbor. */
function commitCid(value: unknown, what: string): CID {
  const c = cid(value, what)
  if (c.code !== DAG_CBOR) throw new ProtocolError(`${what} must be a dag-cbor CID`)
  return c
}
