/**
 * FastCDC content-defined chunking (Xia et al., "The Design of Fast
 * Content-Defined Chunking for Data Deduplication Based Storage Systems",
 * 2020): a gear rolling hash, cut-point skipping below the minimum size, and
 * normalized chunking (a stricter mask before the average size, a looser one
 * after) so chunk sizes cluster near the average. Because a boundary depends
 * only on the 32 bytes before it, an insertion moves at most the boundaries
 * near it and the chunks after resynchronize.
 *
 * Pure: bytes in, chunk views out. No I/O.
 * chunkStreamAlong makes the same chunks, hashed, and skips cutting where a
 * file's previous version shows where the cuts fall.
 */
import { createHash } from 'node:crypto'

/** Chunk size limits in bytes. */
export interface ChunkParams {
  readonly min: number
  readonly avg: number
  readonly max: number
}

/**
 * LEFT's chunk sizes: 16 KiB / 64 KiB / 256 KiB. docs/object-format.md says
 * why; changing them changes every CID, so they are part of the format.
 */
export const DEFAULT_PARAMS: ChunkParams = Object.freeze({ min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 })

/**
 * The gear table: 256 32-bit values, the first four bytes (big-endian) of
 * sha256("left-fastcdc-gear-" + i). Derived rather than pasted so a stranger
 * can rebuild it; pinned by the golden tests.
 */
export const GEAR: Int32Array = (() => {
  const table = new Int32Array(256)
  for (let i = 0; i < 256; i++) {
    const d = createHash('sha256').update(`left-fastcdc-gear-${i}`).digest()
    table[i] = d.readInt32BE(0)
  }
  return table
})()

/** A mask of `bits` ones at the top of a 32-bit word, where the gear hash mixes best. */
function topMask(bits: number): number {
  return (((1 << bits) - 1) << (32 - bits)) | 0
}

interface Masks { readonly small: number; readonly large: number }

function masksFor(p: ChunkParams): Masks {
  const bits = Math.round(Math.log2(p.avg))
  // Normalization level 2: two bits harder before avg, two bits easier after.
  return { small: topMask(bits + 2), large: topMask(bits - 2) }
}

/** Validates chunk parameters; throws RangeError on nonsense. */
export function checkParams(p: ChunkParams): void {
  if (!(Number.isInteger(p.min) && Number.isInteger(p.avg) && Number.isInteger(p.max))) throw new RangeError('chunk sizes must be integers')
  if (!(p.min >= 64 && p.min <= p.avg && p.avg <= p.max && p.max <= 1 << 30)) throw new RangeError('chunk sizes must satisfy 64 <= min <= avg <= max')
}

/**
 * Returns the length of the chunk that starts at `start` in `buf`, looking at
 * no byte at or past `end`. When `end - start` is at most `p.min` the answer
 * is all of it, so callers must pass at least `p.max` bytes unless the input
 * has ended.
 */
export function cutPoint(buf: Uint8Array, start: number, end: number, p: ChunkParams = DEFAULT_PARAMS, masks: Masks = masksFor(p)): number {
  const available = end - start
  if (available <= p.min) return available
  const limit = Math.min(available, p.max)
  const normal = Math.min(limit, p.avg)
  const { small, large } = masks
  const gear = GEAR
  let hash = 0
  let i = start + p.min
  const normalEnd = start + normal
  // Four bytes a turn: the same hash and the same checks with a quarter of
  // the loop's own overhead (a quarter less time, measured on 256 MiB).
  for (; i + 4 <= normalEnd; i += 4) {
    hash = ((hash << 1) + gear[buf[i]!]!) | 0
    if ((hash & small) === 0) return i - start + 1
    hash = ((hash << 1) + gear[buf[i + 1]!]!) | 0
    if ((hash & small) === 0) return i - start + 2
    hash = ((hash << 1) + gear[buf[i + 2]!]!) | 0
    if ((hash & small) === 0) return i - start + 3
    hash = ((hash << 1) + gear[buf[i + 3]!]!) | 0
    if ((hash & small) === 0) return i - start + 4
  }
  for (; i < normalEnd; i++) {
    hash = ((hash << 1) + gear[buf[i]!]!) | 0
    if ((hash & small) === 0) return i - start + 1
  }
  const limitEnd = start + limit
  for (; i + 4 <= limitEnd; i += 4) {
    hash = ((hash << 1) + gear[buf[i]!]!) | 0
    if ((hash & large) === 0) return i - start + 1
    hash = ((hash << 1) + gear[buf[i + 1]!]!) | 0
    if ((hash & large) === 0) return i - start + 2
    hash = ((hash << 1) + gear[buf[i + 2]!]!) | 0
    if ((hash & large) === 0) return i - start + 3
    hash = ((hash << 1) + gear[buf[i + 3]!]!) | 0
    if ((hash & large) === 0) return i - start + 4
  }
  for (; i < limitEnd; i++) {
    hash = ((hash << 1) + gear[buf[i]!]!) | 0
    if ((hash & large) === 0) return i - start + 1
  }
  return limit
}

/**
 * A plain Uint8Array view of `bytes`. Every caller of cutPoint passes one: a
 * Buffer there too would make its hot loop see two array shapes, which costs
 * V8 several times its speed.
 */
function plain(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
}

/** Cuts one complete in-memory buffer into chunk lengths. */
export function chunkLengths(input: Uint8Array, p: ChunkParams = DEFAULT_PARAMS): number[] {
  checkParams(p)
  const masks = masksFor(p)
  const buf = plain(input)
  const out: number[] = []
  for (let pos = 0; pos < buf.length;) {
    const n = cutPoint(buf, pos, buf.length, p, masks)
    out.push(n)
    pos += n
  }
  return out
}

/**
 * Cuts a stream one buffer at a time. Each call cuts chunks from the start
 * of `buf` while at least `p.max` bytes remain ahead of the cut, so no cut is
 * decided on a short view, or to its end once the stream has `ended`; the
 * caller puts the bytes left over in front of the next buffer. Returns views
 * into `buf`.
 */
export class Cutter {
  private readonly masks: Masks

  constructor(private readonly p: ChunkParams = DEFAULT_PARAMS) {
    checkParams(p)
    this.masks = masksFor(p)
  }

  cut(input: Uint8Array, ended: boolean): Uint8Array[] {
    const buf = plain(input)
    const out: Uint8Array[] = []
    const keep = ended ? 1 : this.p.max
    for (let pos = 0; buf.length - pos >= keep;) {
      const n = cutPoint(buf, pos, buf.length, this.p, this.masks)
      out.push(buf.subarray(pos, pos + n))
      pos += n
    }
    return out
  }
}

/** The bytes left over from the last read, followed by the next read, as one plain array. */
function joined(carry: Uint8Array, piece: Uint8Array): Uint8Array {
  if (carry.length === 0) return plain(piece)
  const buf = new Uint8Array(carry.length + piece.length)
  buf.set(carry, 0)
  buf.set(piece, carry.length)
  return buf
}

/** Feeds a stream's reads to a cutter's `cut`, each with what the one before left over. */
async function* cutReads<C>(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, cut: (buf: Uint8Array, ended: boolean) => C[], bytesOf: (chunk: C) => Uint8Array): AsyncGenerator<C> {
  let carry: Uint8Array = new Uint8Array(0)
  for await (const piece of source) {
    if (piece.length === 0) continue
    const buf = joined(carry, piece)
    let pos = 0
    for (const chunk of cut(buf, false)) {
      yield chunk
      pos += bytesOf(chunk).length
    }
    carry = buf.subarray(pos)
  }
  yield* cut(carry, true)
}

/**
 * Cuts a stream of bytes into chunks. Yields views that stay valid after the
 * next chunk is requested; memory holds at most one read plus `p.max` bytes.
 * An empty stream yields nothing.
 */
export function chunkStream(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, p: ChunkParams = DEFAULT_PARAMS): AsyncGenerator<Uint8Array> {
  const cutter = new Cutter(p)
  return cutReads(source, (buf, ended) => cutter.cut(buf, ended), (chunk) => chunk)
}

/**
 * True when cutPoint, started at `start` with `available` bytes ahead, ends
 * its chunk at `length` provided it found no cut before: the gear hash meets
 * its mask at the chunk's last byte, or `length` is the limit. The hash
 * there needs only the chunk's last 32 bytes, since the word shifts every
 * older byte out.
 */
export function endsAtCut(buf: Uint8Array, start: number, length: number, available: number, p: ChunkParams, masks: Masks = masksFor(p)): boolean {
  if (length < 1 || length > available) return false
  const limit = available <= p.min ? available : Math.min(available, p.max)
  if (length === limit) return true
  if (length <= p.min || length > limit) return false
  const mask = length <= Math.min(limit, p.avg) ? masks.small : masks.large
  const gear = GEAR
  const end = start + length
  let hash = 0
  for (let i = Math.max(start + p.min, end - 32); i < end; i++) hash = ((hash << 1) + gear[buf[i]!]!) | 0
  return (hash & mask) === 0
}

/**
 * A file's previous version, as a guide to cutting its new one: the length
 * and SHA-256 digest of each of its chunks, in file order.
 */
export interface PreviousChunks {
  readonly lengths: ArrayLike<number>
  /** The digests, DIGEST_BYTES each, back to back. */
  readonly digests: Uint8Array
}

/** Bytes of a SHA-256 digest. */
export const DIGEST_BYTES = 32

/** A chunk with its SHA-256 digest. */
export interface HashedChunk {
  readonly bytes: Uint8Array
  /**
   * Undefined for a chunk that was cut and is as long as no previous chunk:
   * it cannot be one of them, so it was not hashed here.
   */
  readonly digest: Uint8Array | undefined
  /** True when its boundary was taken from the previous version (and checked), not found by cutting. */
  readonly reused: boolean
}

/** Misses in a row after which the guide stops guessing until a cut chunk finds its twin. */
const GUESSES_MISSED_MAX = 8

/**
 * Cuts a file along its previous version; it is fed as Cutter is. Cutting
 * costs about twice what hashing does, and a chunk's end depends only on
 * its own bytes: where the new version holds the previous chunk expected
 * next, byte for byte (its digest matches), and that chunk ends where a cut
 * falls (endsAtCut), cutting from the same start would end it there too,
 * since the previous version was cut the same way and so has no cut inside
 * the chunk. So an unchanged stretch is hashed and never cut. Elsewhere the
 * chunk is cut; one that equals a previous chunk puts the guide back on
 * track after it, as after an insertion. The chunks are the ones
 * chunkStream makes, as long as the previous version was cut by FastCDC
 * with these parameters; a previous chunk that joins two of them, which
 * only another chunker makes, is kept whole where it ends at a cut.
 */
export class GuidedCutter {
  /** The previous version's chunk expected at the current position. */
  private next = 0
  private missed = 0
  private twinIndex: Twins | undefined
  private readonly masks: Masks

  /**
   * `next`: the previous chunk expected first, for a cut that starts at a
   * boundary of the previous version rather than at the start of the file.
   */
  constructor(private readonly previous: PreviousChunks, private readonly p: ChunkParams = DEFAULT_PARAMS, next = 0) {
    checkParams(p)
    this.next = next
    if (previous.digests.length !== previous.lengths.length * DIGEST_BYTES) throw new RangeError('one digest per previous chunk')
    this.masks = masksFor(p)
  }

  /** As Cutter's `cut`, with the digests of the chunks it hashed. */
  cut(input: Uint8Array, ended: boolean): HashedChunk[] {
    const buf = plain(input)
    const out: HashedChunk[] = []
    for (let pos = 0; ;) {
      const available = buf.length - pos
      if (available === 0 || (!ended && available < this.p.max)) return out
      const chunk = this.follow(buf, pos, available) ?? this.cutAt(buf, pos, available)
      out.push(chunk)
      pos += chunk.bytes.length
    }
  }

  private follow(buf: Uint8Array, start: number, available: number): HashedChunk | undefined {
    const j = this.next
    if (j >= this.previous.lengths.length || this.missed >= GUESSES_MISSED_MAX) return undefined
    const length = this.previous.lengths[j]!
    if (endsAtCut(buf, start, length, available, this.p, this.masks)) {
      const bytes = buf.subarray(start, start + length)
      const digest = sha256(bytes)
      if (digest.equals(this.previousDigest(j))) {
        this.next = j + 1
        this.missed = 0
        return { bytes, digest, reused: true }
      }
    }
    this.missed++
    return undefined
  }

  private cutAt(buf: Uint8Array, start: number, available: number): HashedChunk {
    const n = cutPoint(buf, start, start + available, this.p, this.masks)
    const bytes = buf.subarray(start, start + n)
    // Hashing here is only to find a twin. Left to the caller, it can run
    // beside the cutting, which a file replaced by other content needs.
    const digest = this.twins().lengths.has(n) ? sha256(bytes) : undefined
    const twin = digest === undefined ? undefined : this.twins().byDigest.get(digest.toString('latin1'))
    if (twin !== undefined) {
      this.next = twin + 1
      this.missed = 0
    } else {
      // Most edits keep the next chunk's boundary: try the one after the chunk this one replaced.
      this.next++
    }
    return { bytes, digest, reused: false }
  }

  private previousDigest(j: number): Buffer {
    const d = this.previous.digests
    return Buffer.from(d.buffer, d.byteOffset + j * DIGEST_BYTES, DIGEST_BYTES)
  }

  /** Where each previous digest first appears, and the lengths there are; made at the first chunk that has to be cut. */
  private twins(): Twins {
    if (this.twinIndex === undefined) {
      const byDigest = new Map<string, number>()
      const lengths = new Set<number>()
      for (let j = this.previous.lengths.length - 1; j >= 0; j--) {
        byDigest.set(this.previousDigest(j).toString('latin1'), j)
        lengths.add(this.previous.lengths[j]!)
      }
      this.twinIndex = { byDigest, lengths }
    }
    return this.twinIndex
  }
}

interface Twins {
  readonly byDigest: Map<string, number>
  readonly lengths: Set<number>
}

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest()
}

/**
 * Cuts a stream of bytes into the chunks chunkStream makes, each with its
 * SHA-256 digest, guided by the previous version of the same file (see
 * GuidedCutter): where the two agree, a chunk is hashed but not cut. The
 * digests of `previous` are trusted only as far as they match the bytes.
 */
export function chunkStreamAlong(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, previous: PreviousChunks, p: ChunkParams = DEFAULT_PARAMS): AsyncGenerator<HashedChunk> {
  const cutter = new GuidedCutter(previous, p)
  return cutReads(source, (buf, ended) => cutter.cut(buf, ended), (chunk) => chunk.bytes)
}
