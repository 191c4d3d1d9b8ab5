/**
 * Wire compression of blocks: deflate-raw at level 1, used only where it
 * pays, and inflation with a hard output cap so a small hostile frame cannot
 * expand into gigabytes. Much of what people sync (photos, video, archives)
 * is already compressed, so the sender first measures the byte entropy of a
 * small sample and skips incompressible blocks after a few microseconds.
 */
import { promisify } from 'node:util'
import { deflateRaw, inflateRaw } from 'node:zlib'
import type { CID } from 'multiformats/cid'
import { ProtocolError } from '../errors.js'
import { RAW } from '../object/cid.js'
import { MAX_FRAME } from './frame.js'

const deflate = promisify(deflateRaw)
const inflate = promisify(inflateRaw)

/** Largest raw object accepted from a peer, after inflation (4x the 256 KiB chunk maximum). */
export const MAX_RAW_OBJECT = 1024 * 1024

/** Largest structure node accepted from a peer, after inflation: one frame's worth. */
export const MAX_NODE_OBJECT = MAX_FRAME - 1024

/** Blocks shorter than this are sent as they are: the saving would be a few bytes. */
export const MIN_COMPRESS = 512

/** Size of the trial sample, in bytes. */
export const SAMPLE_SIZE = 1024

/**
 * Bits per byte above which a sample is taken for incompressible. Random and
 * already-compressed data measure about 7.8 on a 1 KiB sample; text and
 * most uncompressed formats measure 3 to 6. A byte histogram costs a few
 * microseconds, where a trial deflate (which sets up a fresh zlib stream)
 * costs a hundred times more.
 */
export const MAX_ENTROPY = 7.5

/** Shannon entropy of the byte values of `sample`, in bits per byte. */
export function entropy(sample: Uint8Array): number {
  const counts = new Uint32Array(256)
  for (let i = 0; i < sample.length; i++) counts[sample[i]!]!++
  let bits = 0
  for (let v = 0; v < 256; v++) {
    const c = counts[v]!
    if (c > 0) {
      const p = c / sample.length
      bits -= p * Math.log2(p)
    }
  }
  return bits
}

/** Compression is used only when the result is below this fraction of the input. */
export const WORTH_RATIO = 0.9

const LEVEL = 1

/** What to put in a block message's `data` and `z` fields. */
export interface PackedBlock {
  readonly data: Uint8Array
  readonly z: 0 | 1
}

/**
 * Chooses the wire form of an object: deflate-raw (z = 1) when a 1 KiB sample
 * from its middle looks compressible (entropy at most MAX_ENTROPY) and the
 * whole object then shrinks below 90%, otherwise the bytes as they are (z = 0).
 */
export async function packBlock(bytes: Uint8Array): Promise<PackedBlock> {
  if (bytes.length < MIN_COMPRESS) return { data: bytes, z: 0 }
  if (bytes.length > SAMPLE_SIZE) {
    // The middle, not the start: media files often open with a compressible
    // header in front of an incompressible body.
    const start = Math.floor((bytes.length - SAMPLE_SIZE) / 2)
    if (entropy(bytes.subarray(start, start + SAMPLE_SIZE)) > MAX_ENTROPY) return { data: bytes, z: 0 }
  }
  const packed = await deflate(bytes, { level: LEVEL })
  return packed.length < bytes.length * WORTH_RATIO ? { data: packed, z: 1 } : { data: bytes, z: 0 }
}

/** The most bytes an object with this CID may have (raw chunks are small; nodes can be large). */
export function maxObjectSize(cid: CID): number {
  return cid.code === RAW ? MAX_RAW_OBJECT : MAX_NODE_OBJECT
}

/**
 * Recovers an object's bytes from a block message. Inflation stops at the
 * object's size limit; oversized or corrupt data is a ProtocolError.
 */
export async function unpackBlock(cid: CID, data: Uint8Array, z: 0 | 1): Promise<Uint8Array> {
  const limit = maxObjectSize(cid)
  if (z === 0) {
    if (data.length > limit) throw new ProtocolError(`block ${cid} is ${data.length} bytes, over the ${limit}-byte limit`)
    return data
  }
  try {
    const out = await inflate(data, { maxOutputLength: limit })
    return new Uint8Array(out.buffer, out.byteOffset, out.length)
  } catch (err) {
    throw new ProtocolError(`block ${cid} does not inflate within ${limit} bytes`, err)
  }
}
