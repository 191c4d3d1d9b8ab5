import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DEFAULT_PARAMS, chunkLengths } from '../../src/chunk/fastcdc.js'
import { FileLayout, RAW, cidOf, cidText } from '../../src/object/index.js'
import { type Repo, storeOf } from '../../src/repo/repo.js'
import { lookupPath } from '../../src/tree/lookup.js'
import { BlockWriter } from '../../src/worktree/block-writer.js'
import { seededBytes } from '../helpers/data.js'
import { sleep } from '../helpers/peers.js'
import { suiteRepos } from '../sync/fixtures.js'

/** Big enough to be streamed (and cut in the worker), not read whole. */
const BIG = 12 << 20

/**
 * A changed big file is cut along its previous version, the one its stat
 * entry names (chunkStreamAlong). These tests hold that to the same result
 * as cutting from scratch, through both the chunk worker and the main
 * thread (two big files at once: the second is cut where the worker is busy).
 */
describe('repo: a changed big file is re-cut only where it changed', () => {
  const { repo } = suiteRepos('left-recommit-')

  async function fileCid(r: Repo, path: string): Promise<string | undefined> {
    return (await lookupPath(storeOf(r), (await r.headTree())!, path))?.cid.toString()
  }

  it('commits an edited big file as a folder that never had the old one would', async () => {
    const a = seededBytes('recommit-a', BIG)
    const b = seededBytes('recommit-b', BIG)
    const r = await repo('edited')
    await writeFile(join(r.share, 'a.bin'), a)
    await writeFile(join(r.share, 'b.bin'), b)
    // Old enough for the stat cache (racy clean is 100 ms).
    await sleep(250)
    assert.ok(await r.commit('first'))
    const a2 = Buffer.concat([a.subarray(0, 5 << 20), Buffer.from('inserted'), a.subarray(5 << 20)])
    const b2 = Buffer.concat([b.subarray(0, 9 << 20), seededBytes('patch', 1024), b.subarray((9 << 20) + 1024)])
    await writeFile(join(r.share, 'a.bin'), a2)
    await writeFile(join(r.share, 'b.bin'), b2)
    assert.ok(await r.commit('edited'))
    const fresh = await repo('fresh')
    await writeFile(join(fresh.share, 'a.bin'), a2)
    await writeFile(join(fresh.share, 'b.bin'), b2)
    assert.ok(await fresh.commit('only the new versions'))
    for (const path of ['a.bin', 'b.bin']) assert.equal(await fileCid(r, path), await fileCid(fresh, path), path)
    const report = await r.fsck()
    assert.deepEqual([report.missing, report.corrupt], [[], []])
  })

  it('follows the version its stat entry names', async () => {
    // The previous versions here are cut by another chunker: pairs of
    // FastCDC's chunks joined. Each joined chunk ends at a cut, so it is
    // followed and kept whole, and the commit shows the guide was used:
    // cut from scratch, the file would have FastCDC's own chunks.
    const r = await repo('guided')
    const writer = new BlockWriter(storeOf(r))
    const joinedRoots: Record<string, string> = {}
    for (const path of ['a.bin', 'b.bin']) {
      const bytes = seededBytes(`guided-${path}`, BIG)
      await writeFile(join(r.share, path), bytes)
      const layout = new FileLayout()
      const lengths = chunkLengths(bytes)
      let pos = 0
      for (let i = 0; i < lengths.length; i++) {
        const joinNext = i + 1 < lengths.length && lengths[i]! + lengths[i + 1]! <= DEFAULT_PARAMS.max
        const n = joinNext ? lengths[i]! + lengths[++i]! : lengths[i]!
        const chunk = bytes.subarray(pos, (pos += n))
        const cid = cidOf(RAW, chunk)
        await writer.add({ cid, bytes: chunk })
        for (const node of layout.add({ cid, size: n })) await writer.add(node)
      }
      const { blocks, root } = layout.finish()
      for (const node of blocks) await writer.add(node)
      // A stat that no longer matches: the file is read again, along this version.
      await writer.setStat(path, { size: BIG, mtimeMs: 1, ctimeMs: 1, ino: 1, cid: cidText(root.cid) })
      joinedRoots[path] = root.cid.toString()
    }
    await writer.flush()
    await sleep(250)
    assert.ok(await r.commit('along the joined versions'))
    const plain = await repo('plain')
    for (const path of ['a.bin', 'b.bin']) await writeFile(join(plain.share, path), seededBytes(`guided-${path}`, BIG))
    assert.ok(await plain.commit('cut from scratch'))
    for (const path of ['a.bin', 'b.bin']) {
      assert.equal(await fileCid(r, path), joinedRoots[path], path)
      assert.notEqual(await fileCid(plain, path), joinedRoots[path], path)
    }
  })
})
