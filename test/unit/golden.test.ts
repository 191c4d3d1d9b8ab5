import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FileLayout, OBJECT_FORMAT, RAW, cidOf, decodeNode, encodeNode, layoutDir } from '../../src/object/index.js'
import type { Block } from '../../src/object/index.js'

/**
 * Golden vectors for object format 2: exact bytes and CIDs that another
 * implementation must produce, listed in docs/object-format.md. A change
 * here is a format change: it needs a new format version, not a new vector.
 * Format 2 added commit generations and sharded directories; chunks, file
 * nodes and directories of up to 256 entries are as in format 1.
 */
const chunk = (text: string) => cidOf(RAW, Buffer.from(text))
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

const EMPTY_DIR = encodeNode({ type: 'dir', entries: [] })
/** A directory with a hidden file, an executable, a subdirectory and a link. */
const DIR = encodeNode({ type: 'dir', entries: [
  { name: '.hidden', kind: 'file', cid: chunk('hidden'), size: 6, mtime: 1700000000000, exec: false },
  { name: 'run.sh', kind: 'file', cid: chunk('#!/bin/sh\n'), size: 10, mtime: 1700000000001, exec: true },
  { name: 'sub', kind: 'dir', cid: EMPTY_DIR.cid, size: 0, mtime: 0, exec: false },
  { name: 'to-sub', kind: 'link', cid: chunk('sub'), size: 3, mtime: 0, exec: false }
] })

/** Checks a block against its vector, and that decoding and encoding it again gives the same bytes. */
function assertVector(block: Block, cid: string, bytes: string): void {
  assert.equal(block.cid.toString(), cid)
  assert.equal(hex(block.bytes), bytes)
  assert.equal(hex(encodeNode(decodeNode(block.bytes)).bytes), bytes)
}

/** `count` files named f000, f001, … (zero-padded to `width`), each holding its own name. */
function namedFiles(count: number, width: number) {
  return Array.from({ length: count }, (_, i) => {
    const name = `f${String(i).padStart(width, '0')}`
    return { name, kind: 'file' as const, cid: chunk(name), size: name.length, mtime: 0, exec: false }
  })
}

describe('object format 2: golden vectors (issues 8, 10, 12)', () => {
  it('is format 2', () => {
    assert.equal(OBJECT_FORMAT, 2)
  })

  it('a chunk is a raw CID of its bytes', () => {
    assert.equal(chunk('hidden').toString(), 'bafkreihfms2aqhl2t2sladnnuu55vzymtg4hw36oq2pqypou2k72dzj6dq')
    assert.equal(cidOf(RAW, new Uint8Array(0)).toString(), 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
  })

  it('a directory with a hidden file, an executable, a subdirectory and a link', () => {
    assertVector(DIR, 'bafyreiadxeex2e2gqbt7xkuspqequo5erqjbqrpvdebb5hsuw4ixuhh2ne',
      'a264747970656364697267656e747269657384a663636964d82a58250001551220e564b4081d7a9ea4b00dada53bdae70c99b87b6fce869f0c3dd4d2bfa1e53e1c' +
      '6465786563f4646b696e646466696c65646e616d65672e68696464656e6473697a6506656d74696d651b0000018bcfe56800a663636964d82a58250001551220' +
      'a8076d3d28d21e02012b20eaf7dbf75409a6277134439025f282e368e3305abf6465786563f5646b696e646466696c65646e616d656672756e2e73686473697a' +
      '650a656d74696d651b0000018bcfe56801a663636964d82a58250001711220f515688e257c2299b902dfc933e381f88425f9ccb7ab3a447d13ec1a982e151664' +
      '65786563f4646b696e6463646972646e616d65637375626473697a6500656d74696d6500a663636964d82a58250001551220ddc6e2b224d0fd821669202258386936' +
      'fc9ce2899e215eec6322b95f8dd96d6a6465786563f4646b696e64646c696e6b646e616d6566746f2d7375626473697a6503656d74696d6500')
  })

  it('a file node of height 0 over two chunks', () => {
    const file = encodeNode({ type: 'file', height: 0, size: 3, links: [{ cid: chunk('ab'), size: 2 }, { cid: chunk('c'), size: 1 }] })
    assertVector(file, 'bafyreihhfwgiwelzsuz7vdsinuvce7enjp7egi64abrlzgxwfslf73hhmi',
      'a46473697a650364747970656466696c65656c696e6b738282d82a58250001551220fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603' +
      '0282d82a582500015512202e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6016668656967687400')
  })

  it('a first commit, and a second with a parent', () => {
    const first = encodeNode({ type: 'commit', tree: EMPTY_DIR.cid, parents: [], generation: 1, author: 'peer1', time: 1700000000000, message: 'first' })
    assertVector(first, 'bafyreifibvp4bc4o2kq2thzdb6p3lzylnhrwvm5xdtmxkdpjhsrjt3klaq',
      'a76474696d651b0000018bcfe568006474726565d82a58250001711220f515688e257c2299b902dfc933e381f88425f9ccb7ab3a447d13ec1a982e151664747970' +
      '6566636f6d6d697466617574686f72657065657231676d65737361676565666972737467706172656e7473806a67656e65726174696f6e01')
    const second = encodeNode({ type: 'commit', tree: DIR.cid, parents: [first.cid], generation: 2, author: 'peer1', time: 1700000000001, message: 'second' })
    assertVector(second, 'bafyreibtml2n6ndp3qcif3zo7zt4gdjiaekvi72i6qxl5aqtafmoey5b7a',
      'a76474696d651b0000018bcfe568016474726565d82a5825000171122003b9097d13468067fbaa927c090a3ba48c121845f519021e9e54b7117a1cfa696474797065' +
      '66636f6d6d697466617574686f72657065657231676d657373616765667365636f6e6467706172656e747381d82a58250001711220a80d5fc08b8ed2a1a99f230f' +
      '9fb5e70b69e36ab3b71cd9750de93ca299ed4b046a67656e65726174696f6e02')
  })

  it('a directory of 300 files is one shard over 16 plain nodes', () => {
    const { root, blocks } = layoutDir(namedFiles(300, 3))
    assert.equal(blocks.length, 17)
    assertVector(root, 'bafyreigu7dbtualw7eiypcwdgbnq6fnxfsyd54dqqbnrsweuleqfuv7o4a',
      'a3647479706565736861726465646570746800676275636b65747390830017d82a58250001711220820474e2ce4f533607e922210e62fd9291b7ff8d7d4791fa62' +
      '10f69b5e67f0b2830113d82a58250001711220d183e61293485741e9ddcfbc8f4f9226da0829582ff0c9ad93872e9ee6e406e6830212d82a5825000171122004c7' +
      '773e94c810d09124af434948ba63123f3d0f07f8f2ee1eda255eeab70d9883031819d82a58250001711220a9a97ecd9252d413b2d8db0ef8bba69d7a7dcb4c7e5e' +
      '63474607dad3fc46c291830415d82a582500017112207ba3bb53ce21f378cfc31021d639748e4c9c3791bafbd4eb4e18c3e6cb7af10c830509d82a582500017112' +
      '20accaadcb47266f3f87b5e81ccf02fd6c4bd3a2cd248aa30c75acfbc2a69488fb830615d82a582500017112202967f8eee064da1cd1fe55e91779d9754705559d' +
      '15413e72f622605528163e41830716d82a58250001711220bb20d152b772c90410aa4a270f951c6bf2ceb03104276b83ea2ed1ea09e9ce65830815d82a58250001' +
      '711220d1bf75541a99fecffe07a9fe56bc85ec30bdb2a3443097ded161073f87a7e448830913d82a58250001711220769a1f2cb9a5aa0e6cffaac2df2dfacfbeac' +
      'b7f562e785aac63bd08a540b2b79830a0dd82a5825000171122055b4c26a958e53fef1b1e59ea5bf7b18f8d1790e10dcffe1dee7a06b75ef77f3830b0ad82a5825' +
      '0001711220dd46667aef9d0aa56be4ffae4d7ef5649f856d4968a63cecef8dc2526bc17b4b830c15d82a582500017112201893235fa05b89903c4d5c5f2298865b' +
      'b3d6eb447488d11884b01f04affb0145830d12d82a582500017112202f4a27566c4eb4bec1f41d3d7c64363818eb1a0a819f35282710da9ee122c5ff830e11d82a' +
      '58250001711220bf3b665799ec937bafae5f33c38c1ff410ace81d50ee23e329e6f459abeb2ae7830f17d82a58250001711220329d4217edeb61373d90bea186f1' +
      'dd5f7032a7ce0cb83ed57aa0654e04f7dd5e')
  })

  it('a directory of 5,000 files is two levels of shards', () => {
    const { root, blocks } = layoutDir(namedFiles(5000, 4))
    assert.equal(root.cid.toString(), 'bafyreibmh7sjagrd2hzd4qzph62yvs4eu4nvs5scdvvpeea7pcvtc6x2j4')
    assert.equal(blocks.length, 273)
    assert.equal(blocks.filter((b) => decodeNode(b.bytes).type === 'shard').length, 17)
  })

  it('file layout roots: the content-defined node boundaries, pinned', () => {
    // Chunks are the raw CIDs of "chunk 0", "chunk 1", …, each declared 100 bytes.
    const cases: Array<[number, string, number, number]> = [
      [2, 'bafyreiawnqyeingmcp3hycv52ecebq53pculmwmq6or5u2rkl235v4z34q', 1, 0],
      [100, 'bafyreie3ulgpw75vcaru3bzedqiokyeyodrqauowjuw3tunxzbomi4dgcu', 3, 1],
      [3000, 'bafyreifkfj7vq3uxipk6xu5qioxitm5mxkfarhkrntcfk7g56qbapz5qvi', 57, 2]
    ]
    for (const [n, root, nodes, height] of cases) {
      const layout = new FileLayout()
      const blocks: Block[] = []
      for (let i = 0; i < n; i++) blocks.push(...layout.add({ cid: chunk(`chunk ${i}`), size: 100 }))
      const done = layout.finish()
      blocks.push(...done.blocks)
      assert.equal(done.root.cid.toString(), root, `${n} chunks`)
      assert.equal(done.root.size, n * 100)
      assert.equal(blocks.length, nodes, `${n} chunks: file nodes`)
      const top = decodeNode(blocks.at(-1)!.bytes)
      assert.ok(top.type === 'file' && top.height === height, `${n} chunks: height`)
    }
  })
})
