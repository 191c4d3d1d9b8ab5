/**
 * Content addresses. Every LEFT object is named by a CIDv1 over sha2-256:
 * chunks and symlink targets use the raw codec, structure nodes use dag-cbor.
 * Hashing goes straight to node:crypto because it is the hot path of commit
 * and sync; the result is an ordinary multiformats CID.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

/** Multicodec code of raw bytes (chunks, symlink targets). */
export const RAW = 0x55
/** Multicodec code of dag-cbor (file nodes, directories, commits). */
export const DAG_CBOR = 0x71
/** Multihash code of sha2-256. */
export const SHA2_256 = 0x12

export { CID }

/** Returns the sha2-256 digest of `bytes`. */
export function sha256(bytes: Uint8Array): Uint8Array {
  const d = createHash('sha256').update(bytes).digest()
  // A plain Uint8Array view, so CIDs made here equal decoded ones structurally.
  return new Uint8Array(d.buffer, d.byteOffset, d.length)
}

/** Returns the CIDv1 of `bytes` under `codec`, hashing with sha2-256. */
export function cidOf(codec: typeof RAW | typeof DAG_CBOR, bytes: Uint8Array): CID {
  return cidFromDigest(codec, sha256(bytes))
}

/** Wraps a precomputed sha2-256 digest as a CIDv1. */
export function cidFromDigest(codec: number, digest: Uint8Array): CID {
  return CID.createV1(codec, Digest.create(SHA2_256, digest))
}

/** True when `bytes` hash to `cid`. Only sha2-256 CIDs can verify. */
export function verifyBytes(cid: CID, bytes: Uint8Array): boolean {
  if (cid.multihash.code !== SHA2_256) return false
  const actual = sha256(bytes)
  const expected = cid.multihash.digest
  if (actual.length !== expected.length) return false
  for (let i = 0; i < actual.length; i++) if (actual[i] !== expected[i]) return false
  return true
}

/**
 * Parses a CID from its string form, returning undefined for anything that
 * is not a sha2-256 CIDv1 with a codec LEFT uses.
 */
export function parseCid(text: string): CID | undefined {
  try {
    const cid = CID.parse(text)
    return isLeftCid(cid) ? cid : undefined
  } catch {
    return undefined
  }
}

/** Decodes a CID from its binary form, or undefined if it is not one of ours. */
export function cidFromBytes(bytes: Uint8Array): CID | undefined {
  try {
    const cid = CID.decode(bytes)
    return isLeftCid(cid) ? cid : undefined
  } catch {
    return undefined
  }
}

/** True for CIDv1, sha2-256, raw or dag-cbor: the only shapes LEFT stores. */
export function isLeftCid(cid: unknown): cid is CID {
  const c = CID.asCID(cid)
  return c !== null && c.version === 1 && c.multihash.code === SHA2_256 &&
    c.multihash.digest.length === 32 && (c.code === RAW || c.code === DAG_CBOR)
}

/** The CID of the empty byte string: the content of every empty file. */
export const EMPTY_CID: CID = cidOf(RAW, new Uint8Array(0))

/**
 * A cheap map key for a CID: its bytes as a latin1 string. Base32 text costs
 * microseconds per call, which adds up to a noticeable share of a transfer
 * that handles every chunk's CID several times.
 */
export function cidKey(cid: CID): string {
  return Buffer.from(cid.bytes.buffer, cid.bytes.byteOffset, cid.bytes.length).toString('latin1')
}
