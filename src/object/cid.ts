/**
 * Content addresses. Every LEFT object is named by a CIDv1 over sha2-256:
 * chunks and symlink targets use the raw codec, structure nodes use dag-cbor.
 * Hashing goes straight to node:crypto because it is the hot path of commit
 * and sync; the result is an ordinary multiformats CID.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { base32 } from 'multiformats/bases/base32'
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

/**
 * Wraps a precomputed sha2-256 digest as a CIDv1. The CID's bytes, its
 * multihash and its digest are views of one buffer, as a decoded CID's are:
 * `CID.createV1` gives each its own, which tripled the memory a 200,000-entry
 * directory's CIDs took.
 */
export function cidFromDigest(codec: number, digest: Uint8Array): CID {
  if (codec !== RAW && codec !== DAG_CBOR) return CID.createV1(codec, Digest.create(SHA2_256, digest))
  // Both codecs and sha2-256 are one-byte varints: version, codec, hash, length.
  const bytes = new Uint8Array(4 + digest.length)
  bytes.set([1, codec, SHA2_256, digest.length])
  bytes.set(digest, 4)
  return new CID(1, codec, new Digest.Digest(SHA2_256, digest.length, bytes.subarray(4), bytes.subarray(2)), bytes)
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
    // Base32, as cidText writes, is decoded by hand: CID.parse keeps the
    // text in a Map hung on the CID, some 300 bytes for as long as the CID
    // lives, which was 58 MB over the entries of a 200,000-file directory.
    const cid = text.startsWith('b') ? CID.decode(base32.decode(text)) : CID.parse(text)
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

/**
 * A CID's text, as `toString` gives it, built flat and not cached on the
 * CID. multiformats builds the text one character at a time and keeps it
 * on the CID: a rope of some fifty pieces, 1.5 KB for as long as either
 * lives, which came to 300 MB over a 200,000-file commit's stat entries.
 */
export function cidText(cid: CID): string {
  return Buffer.from(base32.encode(cid.bytes), 'latin1').toString('latin1')
}
