import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { FileLayout, RAW, cidOf, decodeNode, encodeNode } from '../../src/object/index.js'
import type { Block } from '../../src/object/index.js'

/**
 * Golden vectors for object format 1: exact bytes and CIDs that another
 * implementation must produce, listed in docs/object-format.md. A change
 * here is a format change: it needs a new format version, not a new vector.
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

describe('object format 1: golden vectors (issue 8)', () => {
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
    const first = encodeNode({ type: 'commit', tree: EMPTY_DIR.cid, parents: [], author: 'peer1', time: 1700000000000, message: 'first' })
    assertVector(first, 'bafyreifqde22ekdbueusw4ceojqb3p5r4zt5mr22z2kmergoalb24gyfnq',
      'a66474696d651b0000018bcfe568006474726565d82a58250001711220f515688e257c2299b902dfc933e381f88425f9ccb7ab3a447d13ec1a982e151664747970' +
      '6566636f6d6d697466617574686f72657065657231676d65737361676565666972737467706172656e747380')
    const second = encodeNode({ type: 'commit', tree: DIR.cid, parents: [first.cid], author: 'peer1', time: 1700000000001, message: 'second' })
    assertVector(second, 'bafyreiebcgqk2k2vgrjrnhlo25vtqus5ivx7elhutkixvz6axnrvu7yw2q',
      'a66474696d651b0000018bcfe568016474726565d82a5825000171122003b9097d13468067fbaa927c090a3ba48c121845f519021e9e54b7117a1cfa696474797065' +
      '66636f6d6d697466617574686f72657065657231676d657373616765667365636f6e6467706172656e747381d82a58250001711220b01935a22861a1292b704472' +
      '601dbfb1e667d6475ace94c244ce02c3ae1b056c')
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
