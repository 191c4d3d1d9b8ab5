import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { type ChunkParams, DEFAULT_PARAMS, GEAR, chunkLengths, chunkStream, checkParams, cutPoint } from '../../src/chunk/fastcdc.js'
import { seededBytes } from '../helpers/data.js'

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
})
