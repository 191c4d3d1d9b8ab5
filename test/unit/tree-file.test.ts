import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { RAW, cidOf, encodeNode } from '../../src/object/index.js'
import type { Block } from '../../src/object/index.js'
import { fileChunkGroups } from '../../src/tree/file.js'
import type { ObjectSource } from '../../src/tree/source.js'

/** An in-memory object source holding `blocks`. */
function sourceOf(blocks: readonly Block[]): ObjectSource {
  const map = new Map(blocks.map((b) => [b.cid.toString(), b.bytes]))
  return { get: async (cid: CID) => map.get(cid.toString()) }
}

async function read(src: ObjectSource, cid: CID, size?: number): Promise<string> {
  const parts: Uint8Array[] = []
  for await (const group of fileChunkGroups(src, cid, size)) parts.push(...group)
  return Buffer.concat(parts).toString()
}

const chunk = (text: string): Block => {
  const bytes = Buffer.from(text)
  return { cid: cidOf(RAW, bytes), bytes }
}

describe('tree/file: reading a file checks its tree as it goes (issue 8 item 9)', () => {
  const a = chunk('abc')
  const b = chunk('de')
  const leaf = encodeNode({ type: 'file', height: 0, size: 5, links: [{ cid: a.cid, size: 3 }, { cid: b.cid, size: 2 }] })
  const top = encodeNode({ type: 'file', height: 1, size: 10, links: [{ cid: leaf.cid, size: 5 }, { cid: leaf.cid, size: 5 }] })

  it('reads a well-formed two-level file, repeated links included', async () => {
    assert.equal(await read(sourceOf([a, b, leaf, top]), top.cid, 10), 'abcdeabcde')
    assert.equal(await read(sourceOf([a]), a.cid, 3), 'abc')
  })

  it('refuses a file that is not the size its directory entry says', async () => {
    await assert.rejects(read(sourceOf([a, b, leaf, top]), top.cid, 11), /declares 10 bytes, not 11/)
    await assert.rejects(read(sourceOf([a]), a.cid, 4), /is 3 bytes, not 4/)
  })

  it('refuses a child whose height is not one less than its parent, or whose size is not its link size', async () => {
    const skips = encodeNode({ type: 'file', height: 2, size: 5, links: [{ cid: leaf.cid, size: 5 }] })
    await assert.rejects(read(sourceOf([a, b, leaf, skips]), skips.cid), (err: Error & { code?: string }) => err.code === 'LEFT_INVALID_OBJECT' && /has height 0, not 1/.test(err.message))
    const lies = encodeNode({ type: 'file', height: 1, size: 4, links: [{ cid: leaf.cid, size: 4 }] })
    await assert.rejects(read(sourceOf([a, b, leaf, lies]), lies.cid), /declares 5 bytes, not 4/)
    const shortChunk = encodeNode({ type: 'file', height: 0, size: 4, links: [{ cid: a.cid, size: 4 }] })
    await assert.rejects(read(sourceOf([a, shortChunk]), shortChunk.cid), /is 3 bytes, not 4/)
  })

  it('refuses a chunk whose bytes do not hash to its CID (a damaged store)', async () => {
    const damaged: Block = { cid: a.cid, bytes: Buffer.from('abd') }
    await assert.rejects(read(sourceOf([damaged, b, leaf]), leaf.cid, 5), (err: Error & { code?: string }) => err.code === 'LEFT_HASH_MISMATCH' && err.message.includes(a.cid.toString()))
    await assert.rejects(read(sourceOf([damaged]), a.cid, 3), (err: Error & { code?: string }) => err.code === 'LEFT_HASH_MISMATCH')
  })

  describe('reads the next group of chunks while the caller handles one', () => {
    const chunks = Array.from({ length: 40 }, (_, i) => chunk(`chunk ${i};`))
    const size = chunks.reduce((n, c) => n + c.bytes.length, 0)
    const node = encodeNode({ type: 'file', height: 0, size, links: chunks.map((c) => ({ cid: c.cid, size: c.bytes.length })) })

    it('yields the chunks in order, a group at a time', async () => {
      const groups: Uint8Array[][] = []
      for await (const group of fileChunkGroups(sourceOf([...chunks, node]), node.cid, size)) groups.push(group)
      assert.deepEqual(groups.map((g) => g.length), [16, 16, 8])
      assert.equal(Buffer.concat(groups.flat()).toString(), chunks.map((c) => c.bytes.toString()).join(''))
    })

    it('fails at the group a damaged chunk is in, and not before, even while the caller is slow', async () => {
      const damaged = chunks.map((c, i) => (i === 20 ? { cid: c.cid, bytes: Buffer.from('damaged') } : c))
      const taken: number[] = []
      await assert.rejects(async () => {
        for await (const group of fileChunkGroups(sourceOf([...damaged, node]), node.cid, size)) {
          taken.push(group.length)
          // The second group's read fails meanwhile: that must not go unhandled.
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }, (err: Error & { code?: string }) => err.code === 'LEFT_HASH_MISMATCH')
      assert.deepEqual(taken, [16])
    })
  })
})
