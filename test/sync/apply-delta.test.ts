import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createCipheriv, createHash } from 'node:crypto'
import { open, readFile, readdir, readlink, realpath, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
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

/** `length` bytes that look random, made fast (AES-CTR over zeros) and the same for the same seed. */
function streamBytes(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16)
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length))
}

/** What this process's open descriptors point at, as /proc shows it (a deleted file's path ends in " (deleted)"). */
async function openFiles(): Promise<string[]> {
  return Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')))
}

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

  describe('takes the old file as a hint: only its stat-cached version is used, and every chunk taken from it is hashed', () => {
    /** A repo whose folder holds `bytes` as big.bin, stat-cached, with the entries of v1 and of that version. */
    async function holding(name: string, bytes: Buffer): Promise<{ repo: Repo; v1: DirEntry; now: DirEntry }> {
      const repo = await suite.repo(name)
      const v1 = await entryAt(repo, await commitVersion(repo, V1, 'v1'))
      const now = await entryAt(repo, await commitVersion(repo, bytes, 'now'))
      assert.equal((await storeOf(repo).statEntry('big.bin'))?.cid, now.cid.toString())
      return { repo, v1, now }
    }

    /** Changes bytes of big.bin in place (a chunk near each end), then puts its size and mtime back: only the ctime tells. */
    async function tamper(path: string): Promise<void> {
      const before = await stat(path)
      const fh = await open(path, 'r+')
      await fh.write(Buffer.alloc(4096, 'X'), 0, 4096, 0)
      await fh.write(Buffer.alloc(4096, 'X'), 0, 4096, SIZE - 8192)
      await fh.close()
      await utimes(path, before.atime, before.mtime)
    }

    /** Applies big.bin's change from `before` to v1, unguarded, as a forced checkout does; returns the bytes reused. */
    async function applyV1(repo: Repo, v1: DirEntry, before: DirEntry, hooks = {}): Promise<number> {
      const tmp = await tempDir('left-delta-tmp-')
      try {
        const result = await applyChanges([{ path: 'big.bin', before, after: v1 }], {
          share: repo.share, tmp: tmp.dir, src: storeOf(repo), guard: false, statOf: (p) => storeOf(repo).statEntry(p), hooks
        })
        // Whatever path was taken, nothing is left behind.
        assert.deepEqual(await readdir(tmp.dir), [])
        return result.reused
      } finally {
        await tmp.cleanup()
      }
    }

    it('uses the file when nothing touched it', async () => {
      const { repo, v1, now } = await holding('untouched', V2)
      assert.ok(await applyV1(repo, v1, now) > 0)
      assert.equal(await fileDigest(join(repo.share, 'big.bin')), digest(V1))
    })

    it('writes from the store alone when the file was changed in place before the apply', async () => {
      const { repo, v1, now } = await holding('changed-before', V2)
      await tamper(join(repo.share, 'big.bin'))
      assert.equal(await applyV1(repo, v1, now), 0)
      assert.equal(await fileDigest(join(repo.share, 'big.bin')), digest(V1))
    })

    it('writes from the store alone when the file changes or goes between the plan and the write', async () => {
      const changed = await holding('changed-during', V2)
      const afterPlan = async (): Promise<void> => tamper(join(changed.repo.share, 'big.bin'))
      assert.equal(await applyV1(changed.repo, changed.v1, changed.now, { afterPlan }), 0)
      assert.equal(await fileDigest(join(changed.repo.share, 'big.bin')), digest(V1))
      const gone = await holding('gone-during', V2)
      const remove = async (): Promise<void> => rm(join(gone.repo.share, 'big.bin'))
      assert.equal(await applyV1(gone.repo, gone.v1, gone.now, { afterPlan: remove }), 0)
      assert.equal(await fileDigest(join(gone.repo.share, 'big.bin')), digest(V1))
    })

    // A filesystem whose timestamps are too coarse to show an edit (FAT
    // keeps 2 s) can make the stat cache vouch for a file that changed.
    // The chunks that changed must then come from the store.
    for (const [how, bytes] of [['cloned in place', V2], ['copied across', V3]] as const) {
      it(`writes the right bytes when the stat cache vouches for a file that changed (${how})`, async () => {
        const { repo, v1, now } = await holding(`lying-${how.split(' ')[0]}`, bytes)
        const path = join(repo.share, 'big.bin')
        await tamper(path)
        const st = await stat(path)
        await storeOf(repo).write({ stat: new Map([['big.bin', { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, cid: now.cid.toString() }]]) })
        const reused = await applyV1(repo, v1, now)
        assert.equal(await fileDigest(path), digest(V1))
        // The tampered chunks (one near each end, 256 KiB at most each) were not taken from the file.
        assert.ok(reused > SIZE * 0.7 && reused <= SIZE - 8192, `reused ${reused}`)
      })
    }

    // Big enough to be held (16 MiB and up): freeing it would slow the rename.
    const held = streamBytes('delta-held', 20 * 1024 * 1024)
    for (const [what, next] of [['a big new version', held], ['a small new version', Buffer.from('small now\n')]] as const) {
      it(`holds the old file open across the rename, and closes it once ${what} is in place`, { skip: !existsSync('/proc/self/fd') && 'no /proc/self/fd here' }, async () => {
        const repo = await suite.repo(`held-${next.length}`)
        const want = await entryAt(repo, await commitVersion(repo, next, 'next'))
        const now = await entryAt(repo, await commitVersion(repo, Buffer.concat([seededBytes('held-patch', 4096), held.subarray(4096)]), 'patched'))
        const old = `${await realpath(join(repo.share, 'big.bin'))} (deleted)`
        const heldAt: string[][] = []
        const afterRename = async (): Promise<void> => { heldAt.push(await openFiles()) }
        const reused = await applyV1(repo, want, now, { afterRename })
        // The big one is written from the old file, as before it is freed.
        if (next === held) assert.ok(reused > 0)
        assert.equal(heldAt.length, 1)
        assert.ok(heldAt[0]!.includes(old), `open after the rename: ${heldAt[0]!.join(', ')}`)
        assert.ok(!(await openFiles()).includes(old), 'closed by the end of the apply')
        assert.equal(await fileDigest(join(repo.share, 'big.bin')), digest(next))
      })
    }

    // Bigger than the reads kept in flight (four of 4 MiB) and than the
    // bytes written between early datasyncs (64 MiB): the old ranges are
    // read ahead, written while hashed, and the ones that fail are
    // written again from the store after their range, whatever is in
    // flight meanwhile.
    it('writes a big file shifted by a byte from the old one, run by run, and mends every chunk that changed', async () => {
      const big = streamBytes('delta-big', 80 * 1024 * 1024)
      const shifted = Buffer.concat([Buffer.from('!'), big])
      const repo = await suite.repo('many-runs')
      const want = await entryAt(repo, await commitVersion(repo, big, 'big'))
      const now = await entryAt(repo, await commitVersion(repo, shifted, 'shifted'))
      const path = join(repo.share, 'big.bin')
      const before = await stat(path)
      const fh = await open(path, 'r+')
      for (const at of [9, 30, 50, 71].map((mib) => mib * 1024 * 1024)) await fh.write(Buffer.alloc(4096, 'X'), 0, 4096, at)
      await fh.close()
      await utimes(path, before.atime, before.mtime)
      const st = await stat(path)
      await storeOf(repo).write({ stat: new Map([['big.bin', { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, cid: now.cid.toString() }]]) })
      const reused = await applyV1(repo, want, now)
      assert.equal(await fileDigest(path), digest(big))
      assert.ok(reused > big.length * 0.95 && reused <= big.length - 4 * 4096, `reused ${reused}`)
    })

    it('gives the old file up for the store when the stat cache vouches for a file that is wholly other', async () => {
      const { repo, v1, now } = await holding('lying-wholly', V2)
      const path = join(repo.share, 'big.bin')
      const before = await stat(path)
      await writeFile(path, Buffer.alloc(V2.length, 'X'))
      await utimes(path, before.atime, before.mtime)
      const st = await stat(path)
      await storeOf(repo).write({ stat: new Map([['big.bin', { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, cid: now.cid.toString() }]]) })
      assert.equal(await applyV1(repo, v1, now), 0)
      assert.equal(await fileDigest(path), digest(V1))
    })
  })
})
