import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { deflateRawSync } from 'node:zlib'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { sha512 } from 'multiformats/hashes/sha2'
import { DAG_CBOR, RAW, cidFromDigest, cidOf } from '../../src/object/cid.js'
import { DEFAULT_PORT, formatAddress, parseAddress } from '../../src/sync/address.js'
import { MAX_NODE_OBJECT, MAX_RAW_OBJECT, MIN_COMPRESS, packBlock, unpackBlock } from '../../src/sync/compress.js'
import { FRAME_HEADER, FrameDecoder, MAX_FRAME, encodeFrame } from '../../src/sync/frame.js'
import { MAX_PEER_ID, MAX_WANT, type Message, PROTOCOL_VERSION, decodeMessage, encodeMessage } from '../../src/sync/messages.js'
import { seededBytes } from '../helpers/data.js'

const isCode = (code: string) => (err: unknown): boolean => (err as { code?: unknown }).code === code
const isProtocol = isCode('LEFT_PROTOCOL')
const isUsage = isCode('LEFT_USAGE')

const rawCid = (text: string): CID => cidOf(RAW, Buffer.from(text))
const nodeCid = (text: string): CID => cidOf(DAG_CBOR, Buffer.from(text))
const header = (length: number): Buffer => {
  const b = Buffer.alloc(FRAME_HEADER)
  b.writeUInt32BE(length, 0)
  return b
}

describe('sync/frame', () => {
  const maxFrame = 300
  const payloads = fc.array(fc.uint8Array({ minLength: 1, maxLength: maxFrame }), { maxLength: 12 })

  it('reassembles any sequence of frames however the stream is split, holding only the frame in progress', () => {
    fc.assert(fc.property(payloads, fc.array(fc.nat(), { maxLength: 40 }), (frames, cutsRaw) => {
      const stream = Buffer.concat(frames.map((p) => encodeFrame(p, maxFrame)))
      const cuts = [...new Set(cutsRaw.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b)
      const bounds = [0, ...cuts, stream.length]
      // Where each frame starts in the stream, to model what must be buffered.
      const starts: number[] = []
      let off = 0
      for (const p of frames) {
        starts.push(off)
        off += FRAME_HEADER + p.length
      }
      const decoder = new FrameDecoder(maxFrame)
      const out: Buffer[] = []
      for (let i = 0; i + 1 < bounds.length; i++) {
        out.push(...decoder.push(stream.subarray(bounds[i], bounds[i + 1])))
        const pos = bounds[i + 1]!
        const start = [...starts].reverse().find((s) => s < pos && pos < s + FRAME_HEADER + frames[starts.indexOf(s)]!.length) ?? pos
        const inFrame = pos - start
        // The header is consumed as soon as it is complete; only payload bytes of one frame remain.
        assert.equal(decoder.buffered, inFrame < FRAME_HEADER ? inFrame : inFrame - FRAME_HEADER)
        assert.ok(decoder.buffered < FRAME_HEADER + maxFrame)
      }
      decoder.finish()
      assert.deepEqual(out.map((b) => Buffer.from(b).toString('hex')), frames.map((p) => Buffer.from(p).toString('hex')))
    }))
  })

  it('refuses to encode an empty or oversized payload', () => {
    assert.throws(() => encodeFrame(new Uint8Array(0)), isProtocol)
    assert.throws(() => encodeFrame(new Uint8Array(maxFrame + 1), maxFrame), isProtocol)
    assert.equal(encodeFrame(new Uint8Array(maxFrame), maxFrame).length, FRAME_HEADER + maxFrame)
  })

  it('rejects an oversized length as soon as the header arrives, before any payload is kept', () => {
    const decoder = new FrameDecoder()
    assert.throws(() => decoder.push(header(MAX_FRAME + 1)), (err: Error) => isProtocol(err) && /exceeds/.test(err.message))
    const byteWise = new FrameDecoder()
    const bytes = header(0xffffffff)
    byteWise.push(bytes.subarray(0, 3))
    assert.throws(() => byteWise.push(bytes.subarray(3)), isProtocol)
    assert.ok(byteWise.buffered <= FRAME_HEADER)
  })

  it('accepts a frame of exactly the limit', () => {
    const decoder = new FrameDecoder(maxFrame)
    const frames = decoder.push(Buffer.concat([header(maxFrame), Buffer.alloc(maxFrame, 7)]))
    assert.equal(frames.length, 1)
    assert.equal(frames[0]!.length, maxFrame)
  })

  it('rejects an empty frame', () => {
    assert.throws(() => new FrameDecoder().push(header(0)), (err: Error) => isProtocol(err) && /empty/.test(err.message))
  })

  it('reports a stream cut inside a header or a payload at finish', () => {
    const inHeader = new FrameDecoder()
    inHeader.push(Buffer.from([0, 0]))
    assert.throws(() => inHeader.finish(), isProtocol)
    const inPayload = new FrameDecoder()
    assert.deepEqual(inPayload.push(Buffer.concat([header(10), Buffer.from('abc')])), [])
    assert.equal(inPayload.buffered, 3)
    assert.throws(() => inPayload.finish(), (err: Error) => isProtocol(err) && /3 of 10/.test(err.message))
    const clean = new FrameDecoder()
    clean.push(encodeFrame(Buffer.from('x')))
    clean.finish()
  })
})

describe('sync/messages', () => {
  const commit = nodeCid('a commit')
  const chunk = rawCid('a chunk')
  const reencode = (m: Message): Uint8Array => encodeMessage(decodeMessage(encodeMessage(m)))
  const rejects = (value: unknown, why?: RegExp): void => {
    assert.throws(() => decodeMessage(dagCbor.encode(value)), (err: Error) => isProtocol(err) && (why === undefined || why.test(err.message)),
      `should reject ${JSON.stringify(value, (_k, v: unknown) => (CID.asCID(v) !== null ? String(v) : v))}`)
  }
  const digest = fc.uint8Array({ minLength: 32, maxLength: 32 })
  const anyCid = fc.tuple(fc.constantFrom(RAW, DAG_CBOR), digest).map(([codec, d]) => cidFromDigest(codec, d))

  it('round-trips every message type byte for byte', () => {
    const messages: Message[] = [
      { t: 'hello', v: PROTOCOL_VERSION, peer: 'peer-1', head: null },
      { t: 'hello', v: PROTOCOL_VERSION, peer: 'p'.repeat(MAX_PEER_ID), head: commit },
      { t: 'want', cids: [chunk, commit] },
      { t: 'block', cid: chunk, data: Buffer.from('a chunk'), z: 0 },
      { t: 'block', cid: chunk, data: new Uint8Array(0), z: 1 },
      { t: 'missing', cid: chunk },
      { t: 'head', cid: commit },
      { t: 'fetching', cid: commit },
      { t: 'fetching', cid: null },
      { t: 'bye' }
    ]
    for (const m of messages) {
      const bytes = encodeMessage(m)
      const back = decodeMessage(bytes)
      assert.equal(back.t, m.t)
      assert.deepEqual(Buffer.from(encodeMessage(back)), Buffer.from(bytes), m.t)
    }
    const hello = decodeMessage(encodeMessage(messages[1]!))
    assert.ok(hello.t === 'hello' && hello.head !== null && hello.head.equals(commit))
  })

  it('round-trips any want list of 1 to MAX_WANT CIDs and any block', () => {
    fc.assert(fc.property(fc.array(anyCid, { minLength: 1, maxLength: MAX_WANT }), (cids) => {
      const back = decodeMessage(encodeMessage({ t: 'want', cids }))
      assert.ok(back.t === 'want')
      assert.equal(back.cids.length, cids.length)
      back.cids.forEach((c, i) => assert.ok(c.equals(cids[i]!)))
    }), { numRuns: 30 })
    fc.assert(fc.property(anyCid, fc.uint8Array({ maxLength: 2000 }), fc.constantFrom(0 as const, 1 as const), (cid, data, z) => {
      const m: Message = { t: 'block', cid, data, z }
      assert.deepEqual(Buffer.from(reencode(m)), Buffer.from(encodeMessage(m)))
    }), { numRuns: 50 })
  })

  it('throws only ProtocolError for arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        decodeMessage(bytes)
      } catch (err) {
        assert.ok(isProtocol(err), `unexpected ${String(err)}`)
      }
    }), { numRuns: 500 })
  })

  it('rejects bytes that are not dag-cbor', () => {
    const valid = encodeMessage({ t: 'bye' })
    for (const bytes of [new Uint8Array(0), Buffer.from([0xff]), valid.subarray(0, valid.length - 1), Buffer.concat([valid, Buffer.from([0])]), Buffer.from([0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0])]) {
      assert.throws(() => decodeMessage(bytes), (err: Error) => isProtocol(err) && /dag-cbor/.test(err.message), Buffer.from(bytes).toString('hex'))
    }
  })

  it('rejects messages that are not maps', () => {
    for (const value of [[{ t: 'bye' }], 'bye', 7, null, true, Buffer.from('bye'), commit]) rejects(value, /not a map/)
  })

  it('rejects unknown or missing message types', () => {
    rejects({ t: 'gimme' }, /unknown message type/)
    rejects({ t: 'Hello', v: PROTOCOL_VERSION, peer: 'p', head: null }, /unknown message type/)
    rejects({ t: 3 }, /unknown message type/)
    rejects({ cids: [chunk] }, /unknown message type/)
  })

  it('rejects extra and missing fields', () => {
    rejects({ t: 'bye', reason: 'x' }, /exactly the fields/)
    rejects({ t: 'hello', v: PROTOCOL_VERSION, peer: 'p', head: null, extra: 1 }, /exactly the fields/)
    rejects({ t: 'hello', v: PROTOCOL_VERSION, peer: 'p' }, /exactly the fields/)
    rejects({ t: 'want' }, /exactly the fields/)
    rejects({ t: 'block', cid: chunk, data: new Uint8Array(1) }, /exactly the fields/)
    rejects({ t: 'missing', cid: chunk, z: 0 }, /exactly the fields/)
    rejects({ t: 'head' }, /exactly the fields/)
    rejects({ t: 'fetching' }, /exactly the fields/)
    rejects({ t: 'fetching', cid: null, head: null }, /exactly the fields/)
  })

  it('rejects another protocol version before looking at the shape', () => {
    // Version 1 peers expected every version's content from their peers;
    // version 2 peers send object format 1 (no generations, no shards);
    // version 3 peers answer `fetching` by hanging up.
    rejects({ t: 'hello', v: 1, peer: 'p', head: null }, /version 1, this peer speaks 4/)
    rejects({ t: 'hello', v: 2, peer: 'p', head: null }, /version 2, this peer speaks 4/)
    rejects({ t: 'hello', v: 3, peer: 'p', head: null }, /version 3, this peer speaks 4/)
    rejects({ t: 'hello', v: 5, name: 'from the future' }, /version 5/)
    rejects({ t: 'hello', v: '1', peer: 'p', head: null }, /version/)
    rejects({ t: 'hello', peer: 'p', head: null }, /version/)
  })

  it('rejects bad field values', () => {
    rejects({ t: 'hello', v: PROTOCOL_VERSION, peer: '', head: null })
    rejects({ t: 'hello', v: PROTOCOL_VERSION, peer: 'p'.repeat(MAX_PEER_ID + 1), head: null })
    rejects({ t: 'hello', v: PROTOCOL_VERSION, peer: 42, head: null })
    rejects({ t: 'block', cid: chunk, data: 'text', z: 0 })
    rejects({ t: 'block', cid: chunk, data: new Uint8Array(1), z: 2 })
    rejects({ t: 'block', cid: chunk, data: new Uint8Array(1), z: true })
    rejects({ t: 'want', cids: chunk })
  })

  it('rejects CIDs LEFT does not use, and non-commit heads', async () => {
    const v0 = CID.parse('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n')
    const sha512Cid = CID.createV1(RAW, await sha512.digest(Buffer.from('x')))
    const dagPb = CID.createV1(0x70, chunk.multihash)
    for (const bad of [v0, sha512Cid, dagPb, chunk.toString(), chunk.bytes, null]) {
      rejects({ t: 'want', cids: [chunk, bad] }, /CID/)
      rejects({ t: 'missing', cid: bad }, /CID/)
      rejects({ t: 'block', cid: bad, data: new Uint8Array(1), z: 0 }, /CID/)
    }
    rejects({ t: 'hello', v: PROTOCOL_VERSION, peer: 'p', head: chunk }, /dag-cbor/)
    rejects({ t: 'head', cid: chunk }, /dag-cbor/)
    rejects({ t: 'fetching', cid: chunk }, /dag-cbor/)
    rejects({ t: 'fetching', cid: v0 }, /CID/)
    rejects({ t: 'hello', v: PROTOCOL_VERSION, peer: 'p', head: v0 }, /CID/)
  })

  it('rejects an empty want and one longer than MAX_WANT', () => {
    rejects({ t: 'want', cids: [] }, /1 to 256/)
    const many = Array.from({ length: MAX_WANT + 1 }, (_, i) => rawCid(String(i)))
    rejects({ t: 'want', cids: many }, /1 to 256/)
    assert.equal(decodeMessage(encodeMessage({ t: 'want', cids: many.slice(0, MAX_WANT) })).t, 'want')
  })
})

describe('sync/compress', () => {
  it('deflates compressible objects (z = 1) and inflates them back', async () => {
    const text = Buffer.from('the quick brown fox jumps over the lazy dog. '.repeat(3000))
    const packed = await packBlock(text)
    assert.equal(packed.z, 1)
    assert.ok(packed.data.length < text.length / 4)
    assert.deepEqual(Buffer.from(await unpackBlock(rawCid('x'), packed.data, packed.z)), text)
  })

  it('sends random data and small objects as they are (z = 0)', async () => {
    const random = seededBytes('random', 200_000)
    const packed = await packBlock(random)
    assert.equal(packed.z, 0)
    assert.equal(packed.data, random)
    const small = Buffer.alloc(MIN_COMPRESS - 1, 0)
    assert.deepEqual(await packBlock(small), { data: small, z: 0 })
  })

  it('judges by a sample from the middle: a compressible header does not make a random body worth deflating', async () => {
    const bytes = Buffer.concat([Buffer.alloc(20_000, 0), seededBytes('body', 200_000)])
    assert.equal((await packBlock(bytes)).z, 0)
  })

  it('round-trips any bytes through pack and unpack', async () => {
    const arb = fc.oneof(fc.uint8Array({ maxLength: 10_000 }), fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 20_000 })).map(([b, n]) => new Uint8Array(n).fill(b)))
    await fc.assert(fc.asyncProperty(arb, async (bytes) => {
      const packed = await packBlock(bytes)
      if (packed.z === 1) assert.ok(packed.data.length < bytes.length)
      assert.deepEqual(Buffer.from(await unpackBlock(rawCid('any'), packed.data, packed.z)), Buffer.from(bytes))
    }), { numRuns: 60 })
  })

  it('stops an inflate bomb at the object limit', async () => {
    const bomb = deflateRawSync(Buffer.alloc(MAX_RAW_OBJECT + 1), { level: 9 })
    assert.ok(bomb.length < 4096)
    await assert.rejects(unpackBlock(rawCid('bomb'), bomb, 1), (err: Error) => isProtocol(err) && /inflate within/.test(err.message))
    const exact = deflateRawSync(Buffer.alloc(MAX_RAW_OBJECT), { level: 9 })
    assert.equal((await unpackBlock(rawCid('exact'), exact, 1)).length, MAX_RAW_OBJECT)
    const nodeBomb = deflateRawSync(Buffer.alloc(MAX_NODE_OBJECT + 1), { level: 1 })
    await assert.rejects(unpackBlock(nodeCid('bomb'), nodeBomb, 1), isProtocol)
  })

  it('rejects uncompressed data over the limit and corrupt deflate data', async () => {
    await assert.rejects(unpackBlock(rawCid('big'), new Uint8Array(MAX_RAW_OBJECT + 1), 0), isProtocol)
    assert.equal((await unpackBlock(rawCid('ok'), new Uint8Array(MAX_RAW_OBJECT), 0)).length, MAX_RAW_OBJECT)
    await assert.rejects(unpackBlock(rawCid('corrupt'), Buffer.from([0xff, 0xff, 0xff, 0xff]), 1), isProtocol)
  })
})

describe('sync/address', () => {
  it('parses host, host:port, [v6] and [v6]:port', () => {
    const table: Array<[string, string, number]> = [
      ['peer.example', 'peer.example', DEFAULT_PORT],
      ['peer.example:80', 'peer.example', 80],
      ['localhost.', 'localhost.', DEFAULT_PORT],
      ['10.0.0.1', '10.0.0.1', DEFAULT_PORT],
      ['127.0.0.1:1', '127.0.0.1', 1],
      ['255.255.255.255:65535', '255.255.255.255', 65535],
      ['[::1]', '::1', DEFAULT_PORT],
      ['[::1]:24243', '::1', 24243],
      ['[2001:db8::7]:9', '2001:db8::7', 9],
      ['[fe80::1%eth0]:5', 'fe80::1%eth0', 5],
      ['[::ffff:192.0.2.1]:8', '::ffff:192.0.2.1', 8],
      ['[1:2:3:4:5:6:7:8]:8', '1:2:3:4:5:6:7:8', 8]
    ]
    for (const [text, host, port] of table) assert.deepEqual(parseAddress(text), { host, port }, text)
  })

  it('uses the given default port, and accepts port 0 only when asked', () => {
    assert.deepEqual(parseAddress('h', { defaultPort: 7 }), { host: 'h', port: 7 })
    assert.deepEqual(parseAddress('h:0', { allowPortZero: true }), { host: 'h', port: 0 })
    assert.throws(() => parseAddress('h:0'), isUsage)
  })

  it('rejects empty hosts, bad ports and malformed literals', () => {
    const bad = [
      '', ':', ':80', 'host:', 'host:65536', 'host:-1', 'host:+1', 'host:8o', 'host:123456', 'host: 80', ' host',
      '::1', '::1:80', '1:2:3:4:5:6:7:8', '[::1', '[::1]80', '[::1]:', '[::1]:0', '[]:80', '[host]:80', '[1.2.3.4]', '[1::2::3]', '[1:2:3:4:5:6:7:8:9]', '[12345::]',
      '300.1.1.1', '1.2.3', '01.2.3.4', '1.2.3.4.5', 'a b', '-host', 'host-', 'a..b', 'x'.repeat(64) + '.example', 'ho_st', 'host:80:80'
    ]
    for (const text of bad) assert.throws(() => parseAddress(text), isUsage, JSON.stringify(text))
  })

  it('formats addresses so that they parse back to themselves', () => {
    const octet = fc.integer({ min: 0, max: 255 })
    const v4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'))
    const v6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'))
    const host = fc.oneof(v4, v6, fc.constantFrom('localhost', 'peer-1.lan', 'a.b.c'))
    fc.assert(fc.property(host, fc.integer({ min: 1, max: 65535 }), (h, port) => {
      assert.deepEqual(parseAddress(formatAddress({ host: h, port })), { host: h, port })
    }))
  })
})
