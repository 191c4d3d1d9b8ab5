import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import {
  DAG_CBOR, EMPTY_CID, FileLayout, RAW, cidOf, cidText, compareNames, decodeNode, encodeNode, isSyncableName, isValidName, objectLinks, parseCid, sha256, verifyBytes
} from '../../src/object/index.js'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { base58btc } from 'multiformats/bases/base58'
import type { DirEntry, Node } from '../../src/object/index.js'
import { seededBytes } from '../helpers/data.js'

const chunk = (s: string) => cidOf(RAW, Buffer.from(s))
const fileEntry = (name: string, content = name): DirEntry => ({ name, kind: 'file', cid: chunk(content), size: content.length, mtime: 1700000000000, exec: false })

function expectInvalid(data: unknown): void {
  assert.throws(() => decodeNode(dagCbor.encode(data)), (err: { code?: string }) => err.code === 'LEFT_INVALID_OBJECT')
}

describe('object/cid', () => {
  it('pins the CID of the empty chunk', () => {
    assert.equal(EMPTY_CID.toString(), 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
  })

  it('verifies bytes against their CID and rejects others', () => {
    const cid = chunk('hello')
    assert.ok(verifyBytes(cid, Buffer.from('hello')))
    assert.ok(!verifyBytes(cid, Buffer.from('hellO')))
  })

  it('makes CIDs, and their text, that equal what multiformats makes and decodes', () => {
    for (const codec of [RAW, DAG_CBOR] as const) {
      const bytes = Buffer.from(`content for ${codec}`)
      const ours = cidOf(codec, bytes)
      const theirs = CID.createV1(codec, Digest.create(0x12, sha256(bytes)))
      assert.ok(ours.equals(theirs))
      assert.deepEqual(ours, CID.decode(theirs.bytes))
      assert.deepEqual(ours.multihash.digest, theirs.multihash.digest)
      assert.equal(cidText(ours), theirs.toString())
    }
  })

  it('parses CID text, its own base32 and other multibases, and nothing but sha2-256 CIDv1 of its codecs', () => {
    const cid = chunk('parsed')
    assert.ok(parseCid(cidText(cid))!.equals(cid))
    assert.ok(parseCid(cid.toString(base58btc))!.equals(cid))
    assert.equal(parseCid(cidText(cid).slice(0, -2)), undefined)
    assert.equal(parseCid('b' + cidText(cid).slice(2)), undefined)
    assert.equal(parseCid(CID.createV1(0x70, Digest.create(0x12, sha256(Buffer.from('x')))).toString()), undefined)
    assert.equal(parseCid(CID.createV0(Digest.create(0x12, sha256(Buffer.from('x')))).toString()), undefined)
    assert.equal(parseCid('not a cid'), undefined)
  })
})

describe('object/name', () => {
  it('accepts ordinary, hidden and unicode names', () => {
    for (const n of ['a', '.hidden', '..a', 'a..', 'café ☕', ' spaced ', 'x'.repeat(255), 'a\ufeff']) assert.ok(isValidName(n), n)
  })

  it('rejects names that could climb or split a path', () => {
    for (const n of ['', '.', '..', 'a/b', '/abs', 'x\0y', 'x'.repeat(256), '\ud800']) assert.ok(!isValidName(n), JSON.stringify(n))
    // Valid, and read when decoded, but not committed: a dag-cbor decoder drops a leading U+FEFF.
    assert.ok(isValidName('\ufeffbom') && !isSyncableName('\ufeffbom') && isSyncableName('a\ufeff'))
  })

  it('orders names by their UTF-8 bytes, astral characters after the rest of the BMP', () => {
    // Units near the places where UTF-16 order and UTF-8 order part.
    const alphabet = ['a', 'b', '\u007f', '\u0080', '\u07ff', '\u0800', '\ud7ff', '\ue000', '\uffff', '\u{10000}', '\u{1f600}', '\u{10ffff}']
    let seed = 7
    const pick = (): string => alphabet[(seed = (seed * 48271) % 2147483647) % alphabet.length]!
    const names = Array.from({ length: 400 }, () => Array.from({ length: 1 + (seed % 4) }, pick).join(''))
    const bytes = (n: string): Buffer => Buffer.from(n, 'utf8')
    for (const a of names) {
      for (const b of names.slice(0, 60)) assert.equal(Math.sign(compareNames(a, b)), Buffer.compare(bytes(a), bytes(b)), `${JSON.stringify(a)} ${JSON.stringify(b)}`)
    }
  })
})

describe('object/codec', () => {
  const dir: Node = { type: 'dir', entries: [fileEntry('.hidden'), { name: 'sub', kind: 'dir', cid: encodeNode({ type: 'dir', entries: [] }).cid, size: 0, mtime: 0, exec: false }, fileEntry('z')] }
  const commit: Node = { type: 'commit', tree: encodeNode(dir).cid, parents: [], generation: 1, author: 'peer1', time: 1700000000000, message: 'first' }

  it('round-trips directories, file nodes and commits', () => {
    const file: Node = { type: 'file', height: 0, size: 3, links: [{ cid: chunk('ab'), size: 2 }, { cid: chunk('c'), size: 1 }] }
    for (const node of [dir, file, commit]) {
      const block = encodeNode(node)
      assert.deepEqual(decodeNode(block.bytes), node)
      assert.equal(block.cid.code, DAG_CBOR)
      assert.deepEqual(encodeNode(decodeNode(block.bytes)).bytes, block.bytes)
    }
  })

  it('encodes canonically: the empty directory, byte for byte', () => {
    const empty = encodeNode({ type: 'dir', entries: [] })
    // {"type": "dir", "entries": []}: dag-cbor orders keys by length, then bytes.
    assert.equal(Buffer.from(empty.bytes).toString('hex'), 'a264747970656364697267656e747269657380')
    assert.equal(empty.cid.toString(), 'bafyreihvcvui4jl4ekm3saw7zez6hapyqqs7ttfxvm5ei7it5qnjqlqvcy')
  })

  it('rejects unsafe names when decoding a directory', () => {
    for (const name of ['..', '.', 'a/b', 'x\0y', '']) {
      expectInvalid({ type: 'dir', entries: [{ name, kind: 'file', cid: chunk('x'), size: 1, mtime: 0, exec: false }] })
    }
  })

  it('rejects unsorted or duplicate entries, bad kinds and extra fields', () => {
    const e = (name: string) => ({ name, kind: 'file', cid: chunk(name), size: 1, mtime: 0, exec: false })
    expectInvalid({ type: 'dir', entries: [e('b'), e('a')] })
    expectInvalid({ type: 'dir', entries: [e('a'), e('a')] })
    expectInvalid({ type: 'dir', entries: [{ ...e('a'), kind: 'socket' }] })
    expectInvalid({ type: 'dir', entries: [{ ...e('a'), extra: 1 }] })
    expectInvalid({ type: 'dir', entries: [{ ...e('a'), size: -1 }] })
    expectInvalid({ type: 'dir', entries: [{ ...e('a'), kind: 'dir' }] }) // a dir must be dag-cbor
  })

  it('rejects file nodes whose size is not the sum of their links', () => {
    expectInvalid({ type: 'file', height: 0, size: 5, links: [[chunk('ab'), 2]] })
    expectInvalid({ type: 'file', height: 0, size: 0, links: [] })
  })

  it('rejects unknown types, non-maps and invalid CBOR', () => {
    expectInvalid({ type: 'blob' })
    expectInvalid([1, 2])
    assert.throws(() => decodeNode(Uint8Array.from([0xff, 0x00])), (err: { code?: string }) => err.code === 'LEFT_INVALID_OBJECT')
  })

  it('rejects commits with unsorted parents', () => {
    const p1 = encodeNode({ ...commit, message: 'a' } as Node).cid
    const p2 = encodeNode({ ...commit, message: 'b' } as Node).cid
    const sorted = Buffer.compare(p1.bytes, p2.bytes) < 0 ? [p1, p2] : [p2, p1]
    decodeNode(encodeNode({ ...commit, parents: sorted, generation: 2 } as Node).bytes)
    expectInvalid({ type: 'commit', tree: (commit as { tree: unknown }).tree, parents: [sorted[1], sorted[0]], generation: 2, author: 'p', time: 1, message: '' })
  })

  it('lists the links of every object kind', () => {
    assert.deepEqual(objectLinks(chunk('x'), Buffer.from('x')), [])
    const c = encodeNode(commit)
    assert.deepEqual(objectLinks(c.cid, c.bytes).map(String), [(commit as { tree: { toString(): string } }).tree.toString()])
  })
})

describe('object/file-layout', () => {
  function layout(n: number, seed = 'L') {
    const l = new FileLayout()
    const blocks = []
    for (let i = 0; i < n; i++) blocks.push(...l.add({ cid: cidOf(RAW, seededBytes(`${seed}${i}`, 8)), size: 100 }))
    const fin = l.finish()
    return { blocks: [...blocks, ...fin.blocks], root: fin.root }
  }

  it('makes an empty file the empty chunk and a one-chunk file that chunk', () => {
    assert.equal(new FileLayout().finish().root.cid.toString(), EMPTY_CID.toString())
    const only = cidOf(RAW, Buffer.from('x'))
    const l = new FileLayout()
    assert.deepEqual(l.add({ cid: only, size: 1 }), [])
    assert.equal(l.finish().root.cid.toString(), only.toString())
  })

  it('keeps every node within the fan-out limit and sizes consistent', () => {
    const { blocks, root } = layout(5000)
    assert.equal(root.size, 500000)
    for (const b of blocks) {
      const node = decodeNode(b.bytes)
      assert.equal(node.type, 'file')
      if (node.type === 'file') assert.ok(node.links.length <= 1024)
    }
  })

  it('rewrites only a root path when one chunk changes (content-defined nodes)', () => {
    const a = layout(4000)
    const l = new FileLayout()
    const blocks = []
    for (let i = 0; i < 4000; i++) {
      const seed = i === 2000 ? 'changed' : `L${i}`
      blocks.push(...l.add({ cid: cidOf(RAW, seededBytes(seed, 8)), size: 100 }))
    }
    blocks.push(...l.finish().blocks)
    const before = new Set(a.blocks.map((b) => b.cid.toString()))
    const fresh = blocks.filter((b) => !before.has(b.cid.toString()))
    assert.ok(fresh.length <= 3, `${fresh.length} nodes rewritten`)
  })
})
