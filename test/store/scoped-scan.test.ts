import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmod, mkdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Repo, storeOf } from '../../src/repo/repo.js'
import { ChangedPaths } from '../../src/worktree/changed-paths.js'
import { sleep } from '../helpers/peers.js'
import { suiteRepos } from '../sync/fixtures.js'

/**
 * A commit asked for `changedOnly`, beside a watcher's record of changed
 * paths, looks at those paths alone and edits HEAD's tree above them. It
 * must make the very tree a scan of the whole folder makes, whatever the
 * change; and it must really look nowhere else.
 */
describe('repo: a commit that looks only where the watcher saw changes', () => {
  const { repo } = suiteRepos('left-scoped-')
  let n = 0

  async function put(r: Repo, path: string, text: string): Promise<void> {
    await mkdir(join(r.share, path, '..'), { recursive: true })
    await writeFile(join(r.share, path), text)
  }

  /** A repo with a few folders, a sharded one (more than 256 entries), a link and ignore rules, committed, following `changes`. */
  async function watched(): Promise<{ r: Repo; changes: ChangedPaths }> {
    const r = await repo(`r-${n++}`)
    await put(r, '.leftignore', '*.log\nign/\n')
    await put(r, 'a/b/c/deep.txt', 'deep')
    await put(r, 'a/side.txt', 'side')
    await put(r, 'a/run.sh', '#!/bin/sh\n')
    await chmod(join(r.share, 'a/run.sh'), 0o755)
    // A file where the rules ignore only a folder of that name.
    await put(r, 'a/ign', 'a file, not ignored')
    await put(r, 'a/run.log', 'ignored')
    await put(r, 'top.txt', 'top')
    await put(r, 'keep.dat', 'committed, ignored later')
    await put(r, 'ign/x.txt', 'ignored folder')
    for (let i = 0; i < 300; i++) await put(r, `big/f-${i}.txt`, `line ${i}\n`)
    await symlink('top.txt', join(r.share, 'link'))
    await sleep(150)
    assert.ok(await r.commit('start'))
    const changes = new ChangedPaths()
    r.followChanges(changes)
    // The first scan is of the whole folder.
    assert.equal(await r.commit(undefined, { changedOnly: true }), undefined)
    return { r, changes }
  }

  /** Commits what `changes` holds, and checks the result against a scan of the whole folder made instead. */
  async function commitAndCompare(r: Repo, changes: ChangedPaths, what: string): Promise<void> {
    const whole = await r.scan(false)
    await r.commit(what, { changedOnly: true })
    assert.equal((await r.headTree())!.toString(), whole.root.toString(), `after: ${what}`)
    assert.equal(changes.size, 0, `after: ${what}`)
  }

  /** Each step changes the folder and says which paths a watcher would report. */
  const steps: Array<[string, (r: Repo) => Promise<string[]>]> = [
    // First, as the whole scan a rule change brings tidies the stat cache.
    ['a committed file ignored from now on', async (r) => { await put(r, '.leftignore', '*.log\nign/\n*.dat\n'); return ['.leftignore'] }],
    ['that file deleted: HEAD keeps it, as a whole scan does', async (r) => { await rm(join(r.share, 'keep.dat')); return ['keep.dat'] }],
    ['a file edited deep down', async (r) => { await put(r, 'a/b/c/deep.txt', 'deep, edited'); return ['a/b/c/deep.txt'] }],
    ['a file added to the sharded folder', async (r) => { await put(r, 'big/new.txt', 'new'); return ['big/new.txt'] }],
    ['a file whose name cannot be synced (it begins with U+FEFF)', async (r) => { await put(r, 'a/\ufeffbom.txt', 'skipped'); return ['a/\ufeffbom.txt'] }],
    ['a file edited and one deleted in the sharded folder', async (r) => {
      await put(r, 'big/f-7.txt', 'seven')
      await rm(join(r.share, 'big/f-8.txt'))
      return ['big/f-7.txt', 'big/f-8.txt']
    }],
    ['a new folder with files, reported as the folder and its files', async (r) => {
      await put(r, 'n/m/one.txt', '1')
      await put(r, 'n/two.txt', '2')
      return ['n', 'n/m', 'n/m/one.txt', 'n/two.txt']
    }],
    ['a new folder, reported by its files only', async (r) => { await put(r, 'p/q/r.txt', 'r'); return ['p/q/r.txt'] }],
    ['a folder deleted, reported as the folder alone', async (r) => { await rm(join(r.share, 'n'), { recursive: true }); return ['n'] }],
    ['a folder replaced by another of other files, reported as the folder alone', async (r) => {
      await rm(join(r.share, 'a/b/c'), { recursive: true })
      await put(r, 'a/b/c/other.txt', 'other')
      return ['a/b/c']
    }],
    ['a file replaced by a folder of a name the rules ignore as a folder', async (r) => {
      await rm(join(r.share, 'a/ign'))
      await put(r, 'a/ign/x.txt', 'ignored')
      return ['a/ign', 'a/ign/x.txt']
    }],
    ['a file replaced by a folder', async (r) => {
      await rm(join(r.share, 'top.txt'))
      await put(r, 'top.txt/inside.txt', 'inside')
      return ['top.txt', 'top.txt/inside.txt']
    }],
    ['a folder replaced by a file', async (r) => {
      await rm(join(r.share, 'a/b'), { recursive: true })
      await put(r, 'a/b', 'now a file')
      return ['a/b', 'a/b/c', 'a/b/c/deep.txt']
    }],
    ['a link changed and one added', async (r) => {
      await rm(join(r.share, 'link'))
      await symlink('a/side.txt', join(r.share, 'link'))
      await symlink('big', join(r.share, 'a/link2'))
      return ['link', 'a/link2']
    }],
    ['ignored paths changed, and an ignored file deleted', async (r) => {
      await put(r, 'a/other.log', 'ignored')
      await put(r, 'ign/y.txt', 'ignored')
      await rm(join(r.share, 'a/run.log'))
      return ['a/other.log', 'ign/y.txt', 'a/run.log']
    }],
    ['a file replaced by a FIFO, which cannot be synced', async (r) => {
      await rm(join(r.share, 'a/side.txt'))
      execFileSync('mkfifo', [join(r.share, 'a/side.txt')])
      return ['a/side.txt']
    }],
    ['a new folder holding only ignored files', async (r) => { await put(r, 'logs/x.log', 'ignored'); return ['logs', 'logs/x.log'] }],
    ['paths reported that did not change (an executable file among them), and one that never existed', async () => ['a/link2', 'a/run.sh', 'no/such/file.txt']],
    ['enough files deleted from the sharded folder that it fits one node again', async (r) => {
      const gone: string[] = []
      for (let i = 100; i < 160; i++) {
        await rm(join(r.share, `big/f-${i}.txt`))
        gone.push(`big/f-${i}.txt`)
      }
      return gone
    }],
    ['the last file of a folder deleted', async (r) => { await rm(join(r.share, 'p/q/r.txt')); return ['p/q/r.txt'] }]
  ]

  it('makes the tree a scan of the whole folder makes, for each kind of change', async () => {
    const { r, changes } = await watched()
    for (const [what, step] of steps) {
      for (const p of await step(r)) changes.add(p)
      await commitAndCompare(r, changes, what)
    }
    // The stat cache names no file where there is none (a whole commit would tidy that).
    for (const [path, entry] of await storeOf(r).loadStatCache()) {
      if ('ino' in entry) assert.ok((await stat(join(r.share, path))).isFile(), path)
    }
    // Nothing is left for a whole scan to find, nor for a plain commit;
    // nor for a scan that trusts no stat entry the scoped commits wrote.
    assert.deepEqual(await r.status(), [])
    assert.equal(await r.commit(), undefined)
    await storeOf(r).write({ statUnder: [''] })
    assert.equal((await r.scan(false)).root.toString(), (await r.headTree())!.toString())
  })

  it('looks nowhere else: a change not reported waits for a scan of the whole folder', async () => {
    const { r, changes } = await watched()
    await put(r, 'a/side.txt', 'reported')
    await put(r, 'big/f-1.txt', 'not reported')
    changes.add('a/side.txt')
    // Reported, unchanged: its stat entry says so, it is not read.
    changes.add('top.txt')
    const made = (await r.commit('scoped', { changedOnly: true }))!
    assert.deepEqual(made.summary, { added: 0, modified: 1, deleted: 0 })
    assert.equal(made.filesHashed, 1)
    assert.deepEqual((await r.status()).map((c) => c.path), ['big/f-1.txt'])
    // The watcher lost track: the next commit scans everything.
    changes.everything()
    assert.deepEqual((await r.commit('whole', { changedOnly: true }))!.summary, { added: 0, modified: 1, deleted: 0 })
    assert.deepEqual(await r.status(), [])
  })

  it('scans the whole folder when the ignore rules changed, even with nothing reported', async () => {
    const { r } = await watched()
    await put(r, 'a/run.log', 'no longer ignored')
    await writeFile(join(r.layout.leftDir, 'ignore'), '!*.log\n')
    const made = (await r.commit('rules', { changedOnly: true }))!
    assert.deepEqual(made.summary, { added: 1, modified: 0, deleted: 0 })
  })

  it('looks again at a file it left for later', async () => {
    const { r, changes } = await watched()
    await put(r, 'big.bin', 'x'.repeat(10_000))
    await put(r, 'small.txt', 'small')
    changes.add('big.bin')
    changes.add('small.txt')
    const first = (await r.commit('small first', { changedOnly: true, later: (_path, size) => size > 1_000 }))!
    assert.deepEqual(first.summary, { added: 1, modified: 0, deleted: 0 })
    assert.equal(changes.size, 1)
    const second = (await r.commit('then the big one', { changedOnly: true }))!
    assert.deepEqual(second.summary, { added: 1, modified: 0, deleted: 0 })
    assert.deepEqual(await r.status(), [])
  })
})
