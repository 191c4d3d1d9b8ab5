import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { open, readFile, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { type Repo, storeOf } from '../../src/repo/repo.js'
import { loadCommit } from '../../src/tree/source.js'
import { lookupPath } from '../../src/tree/lookup.js'
import type { DirEntry } from '../../src/object/index.js'
import { applyChanges } from '../../src/worktree/materialize.js'
import { seededBytes } from '../helpers/data.js'
import { tempDir } from '../helpers/cli.js'
import { sleep } from '../helpers/peers.js'
import { suiteRepos } from './fixtures.js'

const SIZE = 3 * 1024 * 1024
const V1 = seededBytes('delta-v1', SIZE)
/** V1 with 100 KiB overwritten in the middle: most chunks stay where they were. */
const V2 = Buffer.concat([V1.subarray(0, 1_500_000), seededBytes('delta-patch', 100 * 1024), V1.subarray(1_500_000 + 100 * 1024)])
/** V1 with one byte inserted near the start: the chunks before it stay in place, every one after it moves. */
const V3 = Buffer.concat([V1.subarray(0, 500_000), Buffer.from('!'), V1.subarray(500_000)])
/** V1 without its last 200 KiB: the rest stays in place, and the clone must be cut short. */
const V4 = V1.subarray(0, SIZE - 200 * 1024)

const digest = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

async function fileDigest(path: string): Promise<string> {
  return digest(await readFile(path))
}

/** Writes `bytes` as big.bin and commits it, once the write is old enough for the stat cache to keep. */
async function commitVersion(repo: Repo, bytes: Buffer, message: string): Promise<CID> {
  await writeFile(join(repo.share, 'big.bin'), bytes)
  await sleep(250)
  const made = await repo.commit(message)
  assert.ok(made !== undefined)
  return made.cid
}

async function entryAt(repo: Repo, commit: CID): Promise<DirEntry> {
  const store = storeOf(repo)
  const entry = await lookupPath(store, (await loadCommit(store, commit)).tree, 'big.bin')
  assert.ok(entry !== undefined)
  return entry
}

describe('worktree/materialize: a new version of a big file is written from its old one', () => {
  const suite = suiteRepos('left-delta-')

  it('copies what an overwrite kept and what an insert moved, and writes the same bytes as the store would', async () => {
    const repo = await suite.repo('versions')
    const path = join(repo.share, 'big.bin')
    const c1 = await commitVersion(repo, V1, 'v1')
    const c2 = await commitVersion(repo, V2, 'v2')
    const c3 = await commitVersion(repo, V3, 'v3')
    const c4 = await commitVersion(repo, V4, 'v4')

    // v4 -> v2: v2's tail is not in v4 and comes from the store.
    const toV2 = await repo.checkout(c2.toString())
    assert.equal(await fileDigest(path), digest(V2))
    assert.ok(toV2.reused > SIZE * 0.8 && toV2.reused < SIZE, `reused ${toV2.reused}`)
    const toV3 = await repo.checkout(c3.toString())
    assert.equal(await fileDigest(path), digest(V3))
    assert.ok(toV3.reused > SIZE * 0.8, `reused ${toV3.reused}`)
    // v3 -> v2: most of v2's chunks sit in v3 one byte later, so they are copied across.
    const backToV2 = await repo.checkout(c2.toString())
    assert.equal(await fileDigest(path), digest(V2))
    assert.ok(backToV2.reused > SIZE * 0.8, `reused ${backToV2.reused}`)
    // v2 -> v1: the overwrite's neighbours stay in place in a clone.
    const toV1 = await repo.checkout(c1.toString())
    assert.equal(await fileDigest(path), digest(V1))
    assert.ok(toV1.reused > SIZE * 0.8 && toV1.reused < SIZE, `reused ${toV1.reused}`)
    // v1 -> v4: all in place; the clone is one tail too long until it is cut.
    const toV4 = await repo.checkout(c4.toString())
    assert.equal(await fileDigest(path), digest(V4))
    // All but the chunk that the cut ended (at most 256 KiB) comes from v1.
    assert.ok(toV4.reused > V4.length - 256 * 1024, `reused ${toV4.reused}`)
    // The folder is exactly HEAD: what was written is what the stat cache says.
    assert.deepEqual(await repo.status(), [])
    assert.equal((await stat(path)).size, V4.length)
  })

  it('brings a peer\'s edit in from the file the receiver already has', async () => {
    const source = await suite.repo('source')
    const dest = await suite.repo('dest')
    await suite.bring(source, dest, await commitVersion(source, V1, 'v1'))
    // The receiver's copy was written by the apply, which recorded its stat.
    const result = await suite.bring(source, dest, await commitVersion(source, V2, 'v2'))
    assert.equal(result.mode, 'fast-forward')
    assert.ok(result.reused > SIZE * 0.8, `reused ${result.reused}`)
    assert.equal(await fileDigest(join(dest.share, 'big.bin')), digest(V2))
  })

  describe('trusts the old file only while its stat is the one the stat cache vouches for', () => {
    /** A repo whose folder holds v2, stat-cached, and the entries of v1 and v2. */
    async function atV2(name: string): Promise<{ repo: Repo; v1: DirEntry; v2: DirEntry }> {
      const repo = await suite.repo(name)
      const v1 = await entryAt(repo, await commitVersion(repo, V1, 'v1'))
      const v2 = await entryAt(repo, await commitVersion(repo, V2, 'v2'))
      assert.equal((await storeOf(repo).statEntry('big.bin'))?.cid, v2.cid.toString())
      return { repo, v1, v2 }
    }

    /** Changes bytes of big.bin in place, then puts its size and mtime back: only the ctime tells. */
    async function tamper(path: string): Promise<void> {
      const before = await stat(path)
      const fh = await open(path, 'r+')
      await fh.write(Buffer.alloc(4096, 'X'), 0, 4096, 0)
      await fh.write(Buffer.alloc(4096, 'X'), 0, 4096, SIZE - 8192)
      await fh.close()
      await utimes(path, before.atime, before.mtime)
    }

    async function applyV1(repo: Repo, v1: DirEntry, v2: DirEntry, hooks = {}): Promise<number> {
      const tmp = await tempDir('left-delta-tmp-')
      try {
        const result = await applyChanges([{ path: 'big.bin', before: v2, after: v1 }], {
          share: repo.share, tmp: tmp.dir, src: storeOf(repo), guard: false, statOf: (p) => storeOf(repo).statEntry(p), hooks
        })
        return result.reused
      } finally {
        await tmp.cleanup()
      }
    }

    it('uses the file when nothing touched it', async () => {
      const { repo, v1, v2 } = await atV2('untouched')
      assert.ok(await applyV1(repo, v1, v2) > 0)
      assert.equal(await fileDigest(join(repo.share, 'big.bin')), digest(V1))
    })

    it('writes from the store alone when the file was changed in place before the apply', async () => {
      const { repo, v1, v2 } = await atV2('changed-before')
      await tamper(join(repo.share, 'big.bin'))
      assert.equal(await applyV1(repo, v1, v2), 0)
      assert.equal(await fileDigest(join(repo.share, 'big.bin')), digest(V1))
    })

    it('writes from the store alone when the file changes between the plan and the write', async () => {
      const { repo, v1, v2 } = await atV2('changed-during')
      const afterPlan = async (): Promise<void> => tamper(join(repo.share, 'big.bin'))
      assert.equal(await applyV1(repo, v1, v2, { afterPlan }), 0)
      assert.equal(await fileDigest(join(repo.share, 'big.bin')), digest(V1))
    })
  })
})
