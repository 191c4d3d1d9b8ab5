/**
 * Issue 8's kill -9 loop: 50 kills at random moments of a commit, a sync
 * (fetch and apply) and an apply, each followed by the checks a user would
 * make: `left fsck` is clean, every file the user wrote is still there with
 * its bytes, no commit that was in the log is gone, no file in share/ is
 * torn, and the next run finishes the job. The moments come from a seeded
 * generator, printed as a diagnostic; LEFT_KILL_SEED=<n> replays a run.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { leftOk, statusChanges } from '../helpers/cli.js'
import { type Peer, type PeerSet, type LeftProcess, killAll, logIds, makePeers, serve, sleep, spawnLeft, waitForEqual } from '../helpers/peers.js'
import { type PathInfo, describeTree } from '../helpers/tree.js'

const PORT = 27614
const COMMIT_KILLS = 16
const SYNC_KILLS = 17
const APPLY_KILLS = 17

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function generator(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Runs `left ...args` to the end and returns how long it took, in ms. */
async function timed(cwd: string, args: readonly string[]): Promise<number> {
  const start = Date.now()
  await leftOk(cwd, args)
  return Date.now() - start
}

/** SIGKILLs `p` and says whether it was still running, so the kill landed mid-run. */
async function killNow(p: LeftProcess): Promise<boolean> {
  const midway = p.alive
  await p.kill('SIGKILL')
  return midway
}

/** The files of a folder, path to content hash. */
function filesOf(tree: readonly PathInfo[]): Map<string, string> {
  return new Map(tree.filter((p) => p.type === 'file').map((p) => [p.path, p.sha256!]))
}

/** Asserts that no id of `before` is missing from the peer's log now. */
async function assertHistoryKept(peer: Peer, before: readonly string[], when: string): Promise<string[]> {
  const now = await logIds(peer)
  const lost = before.filter((id) => !now.includes(id))
  assert.deepEqual(lost, [], `${when}: commits vanished from ${peer.name}'s log`)
  return now
}

async function assertFsckClean(peer: Peer, when: string): Promise<void> {
  assert.match(await leftOk(peer.dir, ['fsck']), /: ok$/, `${when}: fsck of ${peer.name}`)
}

describe('e2e: kill -9 at 50 random moments of commit, sync and apply (issue 8)', () => {
  let set: PeerSet
  let A: Peer
  let B: Peer
  const seed = Number(process.env.LEFT_KILL_SEED ?? Date.now() % 2 ** 31)
  const random = generator(seed)
  before(async () => {
    set = await makePeers(2, PORT)
    ;[A, B] = set.peers as [Peer, Peer]
  })
  after(async () => {
    await killAll()
    await set.cleanup()
  })

  /** A's next round of changes: one big file rewritten, one grown, a small file added and one removed. */
  async function changeA(round: number): Promise<void> {
    await writeFile(join(A.share, `big-${round % 3}.bin`), randomBytes((2 + (round % 3)) << 20))
    await writeFile(join(A.share, `big-${(round + 1) % 3}.bin`), randomBytes(256 << 10), { flag: 'a' })
    await writeFile(join(A.share, `.hidden/small-${round}.txt`), `round ${round}\n`.repeat(50))
    await rm(join(A.share, `.hidden/small-${round - 2}.txt`), { force: true })
  }

  it('commit: fsck stays clean, share/ is untouched, history is kept, and the next commit takes everything', async (t) => {
    t.diagnostic(`seed ${seed} (LEFT_KILL_SEED=${seed} replays it)`)
    await mkdir(join(A.share, '.hidden'))
    await writeFile(join(A.share, 'notes.txt'), 'first')
    await leftOk(A.dir, ['commit', '-m', 'start'])
    await changeA(0)
    const full = await timed(A.dir, ['commit', '-m', 'measured'])
    let ids = await logIds(A)
    let midway = 0
    for (let i = 1; i <= COMMIT_KILLS; i++) {
      await changeA(i)
      const before = await describeTree(A.share)
      const commit = spawnLeft(A.dir, ['commit', '-m', `round ${i}`])
      await sleep(random() * full * 1.2)
      if (await killNow(commit)) midway++
      const when = `commit kill ${i}`
      await assertFsckClean(A, when)
      assert.deepEqual(await describeTree(A.share), before, `${when}: share/ changed`)
      ids = await assertHistoryKept(A, ids, when)
      await leftOk(A.dir, ['commit', '-m', `round ${i}, finished`])
      assert.equal(await statusChanges(A.dir), 'nothing to commit, share folder clean', `${when}: something was left uncommitted`)
      ids = await assertHistoryKept(A, ids, `${when}, then a full commit`)
    }
    t.diagnostic(`${midway} of ${COMMIT_KILLS} kills landed while the commit ran (a full commit took ${full} ms)`)
    assert.ok(midway >= COMMIT_KILLS / 3, 'most kills should land mid-commit')
  })

  /**
   * One round on B: A commits a change, B writes a local file and a local
   * edit, and B's `left sync` is killed by `kill`. Then every check, and a
   * sync to the end.
   */
  async function round(i: number, when: string, kill: (sync: LeftProcess) => Promise<boolean>): Promise<boolean> {
    const oldA = filesOf(await describeTree(A.share))
    await changeA(100 + i)
    await leftOk(A.dir, ['commit', '-m', `A ${when}`])
    const newA = filesOf(await describeTree(A.share))
    const local = randomBytes(1000 + i)
    await writeFile(join(B.share, `b-${when.replace(/\W+/g, '-')}.bin`), local)
    await writeFile(join(B.share, 'b-notes.txt'), `edited locally before ${when}\n`)
    const ids = await logIds(B)

    const midway = await kill(spawnLeft(B.dir, ['sync', A.address]))
    await assertFsckClean(B, when)
    await assertHistoryKept(B, ids, when)
    assert.ok((await readFile(join(B.share, `b-${when.replace(/\W+/g, '-')}.bin`))).equals(local), `${when}: a local file changed`)
    assert.equal(await readFile(join(B.share, 'b-notes.txt'), 'utf8'), `edited locally before ${when}\n`, `${when}: a local edit was lost`)
    // Every file A ever sent is whole: its old version or its new one, never a mix.
    for (const [path, hash] of filesOf(await describeTree(B.share))) {
      if (path.startsWith('b-')) continue
      assert.ok(hash === oldA.get(path) || hash === newA.get(path), `${when}: ${path} is torn`)
    }
    await leftOk(B.dir, ['sync', A.address])
    await waitForEqual([A.share, B.share])
    return midway
  }

  it('sync and apply: fsck stays clean, local files and edits survive, no file is torn, and the next sync finishes', async (t) => {
    const server = await serve(A)
    try {
      await leftOk(B.dir, ['sync', A.address])
      await waitForEqual([A.share, B.share])
      // Rounds run to the end scale the kill times. The fastest of three, so
      // that one round slowed by the other tests' load cannot push most kills past the end.
      let full = Infinity
      for (let i = 1; i <= 3; i++) {
        await round(-i, `sync to the end ${i}`, async (sync) => {
          const start = Date.now()
          await sync.exited
          full = Math.min(full, Date.now() - start)
          return false
        })
      }
      let midway = 0
      for (let i = 0; i < SYNC_KILLS; i++) {
        if (await round(i, `sync kill ${i + 1}`, async (sync) => {
          await sleep(random() * full * 1.5)
          return killNow(sync)
        })) midway++
      }
      t.diagnostic(`${midway} of ${SYNC_KILLS} kills landed while the sync ran (a full sync took ${full} ms)`)
      assert.ok(midway >= SYNC_KILLS / 3, 'most kills should land mid-sync')

      // Kills aimed at the apply: once a temp file shows that share/ is being written.
      let applying = 0
      const tmp = join(B.dir, '.left/tmp')
      for (let i = 0; i < APPLY_KILLS; i++) {
        if (await round(SYNC_KILLS + i, `apply kill ${i + 1}`, async (sync) => {
          while (sync.alive && (await readdir(tmp).catch(() => [])).length === 0) await sleep(1)
          await sleep(random() * 40)
          return killNow(sync)
        })) applying++
      }
      t.diagnostic(`${applying} of ${APPLY_KILLS} kills landed during the apply`)
      assert.ok(applying >= APPLY_KILLS / 3, 'most kills should land mid-apply')
      await assertFsckClean(A, 'the end')
    } finally {
      await server.kill('SIGTERM')
    }
  })
})
