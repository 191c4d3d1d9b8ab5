import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { type ChunkParams, DEFAULT_PARAMS, GEAR, type HashedChunk, type PreviousChunks, chunkLengths, chunkStream, chunkStreamAlong, checkParams, cutPoint, endsAtCut } from '../../src/chunk/fastcdc.js'
import { previousOf, seededBytes } from '../helpers/data.js'

/** Chunk boundaries (cumulative offsets) of a length list. */
function offsets(lengths: number[]): number[] {
  const out: number[] = []
  let pos = 0
  for (const n of lengths) out.push((pos += n))
  return out
}

async function streamLengths(buf: Uint8Array, pieceSize: number, p = DEFAULT_PARAMS): Promise<number[]> {
  const pieces: Uint8Array[] = []
  for (let i = 0; i < buf.length; i += pieceSize) pieces.push(buf.subarray(i, i + pieceSize))
  const out: number[] = []
  for await (const c of chunkStream(pieces, p)) out.push(c.length)
  return out
}

/** FastCDC as the paper states it, one byte a turn: what the unrolled cutPoint must agree with everywhere. */
function referenceCut(buf: Uint8Array, start: number, end: number, p: ChunkParams): number {
  const available = end - start
  if (available <= p.min) return available
  const limit = Math.min(available, p.max)
  const normal = Math.min(limit, p.avg)
  const bits = Math.round(Math.log2(p.avg))
  const mask = (n: number): number => (((1 << n) - 1) << (32 - n)) | 0
  let hash = 0
  for (let i = p.min; i < limit; i++) {
    hash = ((hash << 1) + GEAR[buf[start + i]!]!) | 0
    if ((hash & mask(i < normal ? bits + 2 : bits - 2)) === 0) return i + 1
  }
  return limit
}

/** The digests of chunkLengths' chunks of `buf`, as hex. */
function chunkDigests(buf: Uint8Array): string[] {
  let pos = 0
  return chunkLengths(buf).map((n) => createHash('sha256').update(buf.subarray(pos, (pos += n))).digest('hex'))
}

async function along(buf: Uint8Array, previous: PreviousChunks, pieceSize: number, p = DEFAULT_PARAMS): Promise<HashedChunk[]> {
  const pieces: Uint8Array[] = []
  for (let i = 0; i < buf.length; i += pieceSize) pieces.push(buf.subarray(i, i + pieceSize))
  const out: HashedChunk[] = []
  for await (const c of chunkStreamAlong(pieces, previous, p)) out.push(c)
  return out
}

/** Asserts that `chunks` are exactly chunkLengths' cut of `buf`, each with its true digest. */
function assertPlainCut(chunks: readonly HashedChunk[], buf: Uint8Array, p: ChunkParams): void {
  assert.deepEqual(chunks.map((c) => c.bytes.length), chunkLengths(buf, p))
  let pos = 0
  for (const c of chunks) {
    assert.deepEqual(Buffer.from(c.bytes), Buffer.from(buf.subarray(pos, pos + c.bytes.length)))
    if (c.digest !== undefined) assert.deepEqual(Buffer.from(c.digest), createHash('sha256').update(c.bytes).digest())
    else assert.equal(c.reused, false)
    pos += c.bytes.length
  }
}

describe('chunk/fastcdc', () => {
  it('cuts where the one-byte-a-turn reference does, from every start and to every end', () => {
    const data = new Uint8Array(seededBytes('left-reference', 64 * 1024))
    // Small sizes, so cuts fall in both loops and before and after every tail.
    const p = { min: 64, avg: 256, max: 1024 }
    for (let start = 0; start < 4096; start += 37) {
      for (let end = start; end <= start + 1100; end += 13) {
        assert.equal(cutPoint(data, start, end, p), referenceCut(data, start, end, p), `start ${start}, end ${end}`)
      }
    }
    // And with LEFT's sizes, over a long stretch.
    for (let start = 0; start < 8192; start += 1021) {
      assert.equal(cutPoint(data, start, data.length), referenceCut(data, start, data.length, DEFAULT_PARAMS))
    }
  })

  it('derives the pinned gear table', () => {
    assert.equal(GEAR.length, 256)
    assert.equal(GEAR[0], 824108029)
    assert.equal(GEAR[255], -906765612)
  })

  it('cuts 1 MiB of seeded data at the pinned golden boundaries', () => {
    const data = seededBytes('left-golden', 1 << 20)
    assert.deepEqual(chunkLengths(data), [60961, 36867, 82335, 75180, 74799, 74163, 98536, 79127, 79623, 66985, 75333, 81124, 73590, 79391, 10562])
  })

  it('cuts with small parameters at the pinned golden boundaries', () => {
    const data = seededBytes('left-golden', 1 << 20)
    assert.deepEqual(chunkLengths(data, { min: 256, avg: 1024, max: 4096 }).slice(0, 12), [1105, 1116, 1621, 1078, 694, 1037, 1091, 1052, 1279, 513, 1250, 1100])
  })

  it('moves only the first boundary when a byte is inserted at the start', () => {
    const data = seededBytes('left-golden', 1 << 20)
    const shifted = Buffer.concat([Buffer.from([42]), data])
    const a = chunkLengths(data)
    const b = chunkLengths(shifted)
    assert.equal(b[0], a[0]! + 1)
    assert.deepEqual(b.slice(1), a.slice(1))
  })

  it('respects min and max sizes, and covers the input exactly', () => {
    const data = seededBytes('sizes', 3 << 20)
    const lengths = chunkLengths(data)
    assert.equal(lengths.reduce((s, n) => s + n, 0), data.length)
    for (const n of lengths.slice(0, -1)) {
      assert.ok(n >= DEFAULT_PARAMS.min && n <= DEFAULT_PARAMS.max, `chunk of ${n} bytes`)
    }
  })

  it('cuts runs of identical bytes at max size, so they deduplicate', () => {
    const lengths = chunkLengths(new Uint8Array(1 << 20))
    assert.deepEqual(lengths, [262144, 262144, 262144, 262144])
  })

  it('yields nothing for empty input and one chunk for tiny input', async () => {
    assert.deepEqual(chunkLengths(new Uint8Array(0)), [])
    assert.deepEqual(await streamLengths(new Uint8Array(0), 10), [])
    assert.deepEqual(chunkLengths(new Uint8Array(5)), [5])
  })

  it('streams to the same boundaries whatever the read size', async () => {
    const data = seededBytes('stream', 2 << 20)
    const whole = chunkLengths(data)
    for (const piece of [1000, 65536, 300000, 1 << 21]) assert.deepEqual(await streamLengths(data, piece), whole)
  })

  it('moves a bounded number of boundaries for any single insertion (property)', () => {
    const p = { min: 64, avg: 256, max: 1024 }
    const data = seededBytes('prop', 64 * 1024)
    fc.assert(fc.property(fc.integer({ min: 0, max: data.length }), fc.uint8Array({ minLength: 1, maxLength: 16 }), (at, inserted) => {
      const edited = Buffer.concat([data.subarray(0, at), inserted, data.subarray(at)])
      const before = new Set(offsets(chunkLengths(data, p)))
      const after = offsets(chunkLengths(edited, p)).map((o) => (o > at ? o - inserted.length : o))
      const changed = after.filter((o) => !before.has(o)).length
      // The chunk holding the insertion, and the next few while cut-point
      // skipping resynchronizes (a geometric tail: 74% move none, <1% move 8+).
      assert.ok(changed <= 12, `${changed} boundaries moved`)
    }), { numRuns: 300, seed: 20261124 })
  })

  it('rejects nonsense parameters', () => {
    assert.throws(() => checkParams({ min: 100, avg: 50, max: 200 }), RangeError)
    assert.throws(() => chunkLengths(new Uint8Array(10), { min: 1.5, avg: 2, max: 3 }), RangeError)
  })

  it('ends a chunk at a cut exactly where cutPoint does, and nowhere before it (endsAtCut)', () => {
    const data = new Uint8Array(seededBytes('left-ends', 32 * 1024))
    for (const p of [{ min: 64, avg: 256, max: 1024 }, { min: 64, avg: 128, max: 256 }]) {
      for (let start = 0; start < 8192; start += 53) {
        // With a full look-ahead and with every short tail.
        for (const end of [data.length, start + 1, start + 64, start + 65, start + 200, start + 700]) {
          const length = cutPoint(data, start, end, p)
          const available = end - start
          assert.equal(endsAtCut(data, start, length, available, p), true, `start ${start}, end ${end}`)
          for (let n = 1; n < length; n++) assert.equal(endsAtCut(data, start, n, available, p), false, `start ${start}, end ${end}, ${n} of ${length}`)
        }
      }
    }
  })

  it('cuts along a previous version to the same chunks as chunkStream, for any edit and read size (property)', async () => {
    const p = { min: 64, avg: 256, max: 1024 }
    const old = seededBytes('along', 48 * 1024)
    const previous = previousOf(old, chunkLengths(old, p))
    const edits = fc.oneof(
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(old.length), bytes: fc.uint8Array({ minLength: 1, maxLength: 3000 }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(old.length), count: fc.integer({ min: 1, max: 5000 }) }),
      fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(old.length), bytes: fc.uint8Array({ minLength: 1, maxLength: 3000 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(old.length) }),
    )
    await fc.assert(fc.asyncProperty(edits, fc.integer({ min: 1, max: 5000 }), async (edit, pieceSize) => {
      let edited: Buffer
      if (edit.kind === 'insert') edited = Buffer.concat([old.subarray(0, edit.at), edit.bytes, old.subarray(edit.at)])
      else if (edit.kind === 'delete') edited = Buffer.concat([old.subarray(0, edit.at), old.subarray(edit.at + edit.count)])
      else if (edit.kind === 'overwrite') edited = Buffer.concat([old.subarray(0, edit.at), edit.bytes, old.subarray(edit.at + edit.bytes.length)])
      else edited = old.subarray(0, edit.at)
      assertPlainCut(await along(edited, previous, pieceSize, p), edited, p)
    }), { numRuns: 200, seed: 20261130 })
  })

  it('hashes, and does not cut, what a small edit left in place', async () => {
    const old = seededBytes('along-big', 4 << 20)
    const previous = previousOf(old, chunkLengths(old))
    const before = new Set(chunkDigests(old))
    // Each case: the edited bytes, and how many stretches of the old file it
    // moves next to something new. A surviving chunk is followed, not cut,
    // unless it starts such a stretch: that one is found by cutting, and is
    // recognised, so the ones after it are followed again.
    const cases: Array<[string, Buffer, number]> = [
      ['unchanged', old, 0],
      ['a byte inserted at the start', Buffer.concat([Buffer.from([7]), old]), 0],
      ['4 KiB overwritten in the middle', Buffer.concat([old.subarray(0, 2 << 20), seededBytes('patch', 4096), old.subarray((2 << 20) + 4096)]), 0],
      ['1 MiB appended', Buffer.concat([old, seededBytes('tail', 1 << 20)]), 0],
      ['256 KiB deleted', Buffer.concat([old.subarray(0, 1 << 20), old.subarray((1 << 20) + (256 << 10))]), 1],
      ['the halves swapped', Buffer.concat([old.subarray(2 << 20), old.subarray(0, 2 << 20)]), 2],
    ]
    for (const [what, edited, stretches] of cases) {
      const chunks = await along(edited, previous, 1 << 20)
      assertPlainCut(chunks, edited, DEFAULT_PARAMS)
      const surviving = chunkDigests(edited).filter((d) => before.has(d)).length
      assert.ok(surviving >= previous.lengths.length - 5, what)
      assert.equal(chunks.filter((c) => c.reused).length, surviving - stretches, what)
    }
  })

  it('never keeps a previous boundary that is not a cut, nor trusts a digest that does not match', async () => {
    const p = { min: 64, avg: 256, max: 1024 }
    const data = seededBytes('along-split', 32 * 1024)
    const plainLengths = chunkLengths(data, p)
    // Another chunker's version: every chunk split in two where no cut falls.
    const split = plainLengths.flatMap((n) => (n > 2 ? [n - Math.floor(n / 3), Math.floor(n / 3)] : [n]))
    assertPlainCut(await along(data, previousOf(data, split), 4096, p), data, p)
    // The right lengths with digests of other bytes.
    const lying = previousOf(seededBytes('other', data.length), plainLengths)
    const chunks = await along(data, { lengths: plainLengths, digests: lying.digests }, 4096, p)
    assertPlainCut(chunks, data, p)
    assert.equal(chunks.filter((c) => c.reused).length, 0)
    // Another file's version: a chunk is hashed here only if a previous one is as long.
    const otherLengths = chunkLengths(seededBytes('other', data.length), p)
    const unrelated = await along(data, previousOf(seededBytes('other', data.length), otherLengths), 4096, p)
    assertPlainCut(unrelated, data, p)
    const hashedHere = unrelated.map((c) => c.digest !== undefined)
    assert.deepEqual(hashedHere, unrelated.map((c) => otherLengths.includes(c.bytes.length)))
    assert.ok(hashedHere.includes(true) && hashedHere.includes(false))
    // Nothing to follow, and an empty file.
    assertPlainCut(await along(data, previousOf(data, []), 4096, p), data, p)
    assert.deepEqual(await along(new Uint8Array(0), previousOf(data, plainLengths), 4096, p), [])
    await assert.rejects(along(data, { lengths: [1, 2], digests: new Uint8Array(32) }, 4096, p), RangeError)
  })
})
