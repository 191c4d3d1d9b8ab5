import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, lstat, readFile, readdir, readlink, realpath, rm, symlink, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { type Repo, storeOf } from '../../src/repo/repo.js'
import { fsck } from '../../src/repo/maintenance.js'
import { type ApplyHooks, applyChanges } from '../../src/worktree/materialize.js'
import { lookupPath } from '../../src/tree/lookup.js'
import { loadCommit } from '../../src/tree/source.js'
import { ChangedPaths } from '../../src/worktree/changed-paths.js'
import { suiteRepos } from './fixtures.js'

/** The file contents of a share folder, by name (one level). */
async function contents(share: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const name of (await readdir(share)).sort()) out.set(name, await readFile(join(share, name), 'utf8'))
  return out
}

describe('repo/integrate: a local edit while an incoming change is applied', () => {
  const suite = suiteRepos('left-race-')
  let n = 0

  /** A source and a destination folder that both hold doc.txt as `v0`; then the source changes it to `v1`. */
  async function scenario(): Promise<{ source: Repo; dest: Repo; remote: Awaited<ReturnType<Repo['commit']>> }> {
    const source = await suite.repo(`source-${n}`)
    const dest = await suite.repo(`dest-${n++}`)
    await writeFile(join(source.share, 'doc.txt'), 'v0: the shared text\n')
    await suite.bring(source, dest, (await source.commit('v0'))!.cid)
    assert.equal(await readFile(join(dest.share, 'doc.txt'), 'utf8'), 'v0: the shared text\n')
    await writeFile(join(source.share, 'doc.txt'), 'v1: the remote edit, longer\n')
    const remote = (await source.commit('v1'))!
    await suite.fetch(source, dest, remote.cid)
    return { source, dest, remote }
  }

  /** Hooks that write the local edit into doc.txt once, at `step`. */
  function editAt(dest: Repo, step: keyof ApplyHooks): ApplyHooks & { fired: boolean } {
    const hooks: ApplyHooks & { fired: boolean } = { fired: false }
    hooks[step] = async (path: string) => {
      if (path !== 'doc.txt' || hooks.fired) return
      hooks.fired = true
      await writeFile(join(dest.share, 'doc.txt'), 'local edit\n')
    }
    return hooks
  }

  const cases = [['afterPlan', false], ['afterWrite', false], ['afterPlan', true], ['afterWrite', true]] as const
  for (const [step, watched] of cases) {
    const when = step === 'afterPlan' ? 'after the plan' : 'after the temp file is written'
    const beside = watched ? ', beside a watcher that has not reported it yet' : ''
    it(`keeps both versions as files, and in history, when the edit lands ${when}${beside}`, async () => {
      const { dest, remote } = await scenario()
      if (watched) {
        // The commits of integrate look only where the watcher saw changes;
        // the edit's own event is still on its way.
        const changes = new ChangedPaths()
        dest.followChanges(changes)
        assert.equal(await dest.commit(undefined, { changedOnly: true }), undefined)
      }
      const hooks = editAt(dest, step)
      const result = await dest.integrate(remote!.cid, undefined, hooks)
      assert.ok(hooks.fired)
      assert.equal(result.mode, 'merge', 'the edit was committed and merged with the remote for real')
      assert.deepEqual(result.skipped, [])
      assert.equal(result.conflicts.length, 1)
      const files = await contents(dest.share)
      assert.deepEqual([...files.values()].sort(), ['local edit\n', 'v1: the remote edit, longer\n'])
      assert.equal(files.size, 2)
      assert.match([...files.keys()].find((k) => k !== 'doc.txt')!, /^doc\.sync-conflict-.*\.txt$/)
      // The folder is exactly HEAD: nothing is left to commit, nothing was lost.
      assert.deepEqual(await dest.status(), [])
      const report = await fsck(storeOf(dest))
      assert.deepEqual([report.missing, report.corrupt], [[], []])
    })
  }

  it('commits an edit that lands after the rename, instead of taking it for the remote version', async () => {
    const { dest, remote } = await scenario()
    const hooks = editAt(dest, 'afterRename')
    const result = await dest.integrate(remote!.cid, undefined, hooks)
    assert.ok(hooks.fired)
    assert.equal(result.mode, 'fast-forward')
    // The stat cache did not record the edited file under the remote's CID.
    assert.deepEqual((await dest.status()).map((c) => [c.kind, c.path]), [['modified', 'doc.txt']])
    const made = await dest.commit('after')
    assert.ok(made !== undefined)
    // What was committed is the edit itself, not the remote's bytes under the edit's size.
    await rm(join(dest.share, 'doc.txt'))
    await dest.restore('doc.txt')
    assert.equal(await readFile(join(dest.share, 'doc.txt'), 'utf8'), 'local edit\n')
    const log = await dest.log()
    assert.deepEqual(log.map((e) => e.commit.message), ['after', 'v1', 'v0'])
  })
})

describe('worktree/materialize: a checkout\'s apply (syncAtEnd) and a file made meanwhile', () => {
  const suite = suiteRepos('left-race-checkout-')

  it('writes new small files with synchronous calls and records them, but keeps a file made at the path after the plan', async () => {
    const { changes, store, target, tmp } = await committedFiles(suite, 'two', { 'made-meanwhile.txt': 'the remote version\n', 'plain.txt': 'written as planned\n' })
    const result = await applyChanges(changes, {
      share: target.share, tmp, src: store, guard: true, syncAtEnd: true,
      hooks: { afterPlan: async (path) => { if (path === 'made-meanwhile.txt') await writeFile(join(target.share, path), 'a file of the user\'s\n') } }
    })
    assert.deepEqual(result.skipped, ['made-meanwhile.txt'])
    assert.equal(await readFile(join(target.share, 'made-meanwhile.txt'), 'utf8'), 'a file of the user\'s\n')
    assert.equal(await readFile(join(target.share, 'plain.txt'), 'utf8'), 'written as planned\n')
    assert.deepEqual([...result.stat.keys()], ['plain.txt'])
    assert.equal(result.stat.get('plain.txt')?.cid, changes[1]!.after!.cid.toString())
  })
})

/** Files committed in a source repo, their changes from nothing, and an empty target repo to apply them to. */
interface Committed {
  readonly changes: Array<{ path: string; after: Awaited<ReturnType<typeof lookupPath>> }>
  readonly store: ReturnType<typeof storeOf>
  readonly target: Repo
  /** The target's temp folder. */
  readonly tmp: string
}

async function committedFiles(suite: ReturnType<typeof suiteRepos>, label: string, files: Record<string, string | Buffer>): Promise<Committed> {
  const source = await suite.repo(`source-${label}`)
  for (const [name, content] of Object.entries(files)) await writeFile(join(source.share, name), content)
  const { cid } = (await source.commit('files'))!
  const store = storeOf(source)
  const tree = (await loadCommit(store, cid)).tree
  const changes = await Promise.all(Object.keys(files).map(async (path) => ({ path, after: await lookupPath(store, tree, path) })))
  const target = await suite.repo(`target-${label}`)
  return { changes, store, target, tmp: join(target.share, '../.left/tmp') }
}

/** This process's open files under any of `dirs` (their real paths: /proc shows those). */
async function openUnder(dirs: readonly string[]): Promise<string[]> {
  const real = await Promise.all(dirs.map((d) => realpath(d)))
  const links = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')))
  return links.filter((l) => real.some((d) => l.startsWith(d + '/')))
}

describe('worktree/materialize: a batch of small files, each fsynced before its rename', () => {
  const suite = suiteRepos('left-race-batch-')
  const names = ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt']

  /** Five small files committed in a source repo, and an empty target to apply them to. */
  const fiveFiles = (label: string): Promise<Committed> => committedFiles(suite, label, Object.fromEntries(names.map((n) => [n, `${n} from the peer\n`])))

  it('keeps an edit made to a file of the batch while a later file of it is still being written', async () => {
    const { changes, store, target, tmp } = await fiveFiles('edit')
    // a.txt is in its temp file by the time e.txt is planned; the user makes a.txt meanwhile.
    const result = await applyChanges(changes, {
      share: target.share, tmp, src: store, guard: true,
      hooks: { afterPlan: async (path) => { if (path === 'e.txt') await writeFile(join(target.share, 'a.txt'), 'made by the user\n') } }
    })
    assert.deepEqual(result.skipped, ['a.txt'])
    const files = await contents(target.share)
    assert.equal(files.get('a.txt'), 'made by the user\n')
    for (const name of names.slice(1)) assert.equal(files.get(name), `${name} from the peer\n`)
    assert.deepEqual([...result.stat.keys()].sort(), names.slice(1))
    assert.deepEqual(await readdir(tmp), [])
  })

  for (const step of ['afterPlan', 'afterWrite'] as const) {
    const when = step === 'afterPlan' ? 'while its temp files are still open' : 'once its temp files are fsynced'
    it(`leaves no temp file and no open file behind when the batch fails partway, ${when}`, { skip: !existsSync('/proc/self/fd') && 'no /proc/self/fd here' }, async () => {
      const { changes, store, target, tmp } = await fiveFiles(step)
      // This process's open files that are temp files or files of the target folder.
      const ours = (): Promise<string[]> => openUnder([tmp, target.share])
      await assert.rejects(applyChanges(changes, {
        share: target.share, tmp, src: store, guard: true,
        hooks: { [step]: async (path: string) => { if (path === 'c.txt') throw new Error('the disk went away') } }
      }), (err: Error) => [err.message, (err.cause as Error | undefined)?.message].includes('the disk went away'))
      // Renamed before the failure: what was fsynced and placed. Nothing after it.
      const placed = step === 'afterPlan' ? [] : ['a.txt', 'b.txt']
      assert.deepEqual([...(await contents(target.share)).keys()], placed)
      assert.deepEqual(await readdir(tmp), [])
      assert.deepEqual(await ours(), [])
    })
  }
})

describe('worktree/materialize: a batch of small and big files that fails', () => {
  const suite = suiteRepos('left-race-mixed-')
  const small = ['a.txt', 'b.txt', 'c.txt']
  const big = Array.from({ length: 8 }, (_, i) => `big-${i}.bin`)

  /** Three small files and eight of 1 MiB and more (written on their own, four at a time), and an empty target. */
  const mixed = (label: string): Promise<Committed> => committedFiles(suite, label, {
    ...Object.fromEntries(small.map((n) => [n, `${n} from the peer\n`])),
    ...Object.fromEntries(big.map((n) => [n, randomBytes(1024 * 1024 + 1)]))
  })

  it('starts no big file once a small one has failed, and leaves no temp or open file', { skip: !existsSync('/proc/self/fd') && 'no /proc/self/fd here' }, async () => {
    const { changes, store, target, tmp } = await mixed('small-fails')
    await assert.rejects(applyChanges(changes, {
      share: target.share, tmp, src: store, guard: true,
      hooks: { afterPlan: async (path) => { if (path === 'a.txt') throw new Error('the disk went away') } }
    }), /the disk went away/)
    const there = [...(await contents(target.share)).keys()]
    // The first four big files were under way when a.txt failed; the other four never started.
    assert.ok(there.every((name) => big.slice(0, 4).includes(name)), there.join(' '))
    assert.deepEqual(await readdir(tmp), [])
    assert.deepEqual(await openUnder([tmp, target.share]), [])
  })

  it('leaves no temp or open file when a big file fails beside staged small ones', { skip: !existsSync('/proc/self/fd') && 'no /proc/self/fd here' }, async () => {
    const { changes, store, target, tmp } = await mixed('big-fails')
    await assert.rejects(applyChanges(changes, {
      share: target.share, tmp, src: store, guard: true,
      hooks: { afterWrite: async (path) => { if (path === 'big-0.bin') throw new Error('the disk went away') } }
    }), (err: Error) => [err.message, (err.cause as Error | undefined)?.message].includes('the disk went away'))
    assert.ok(!(await contents(target.share)).has('big-0.bin'))
    assert.deepEqual(await readdir(tmp), [])
    assert.deepEqual(await openUnder([tmp, target.share]), [])
  })

  for (const step of ['afterPlan', 'afterWrite'] as const) {
    const when = step === 'afterPlan' ? 'stages' : 'renames'
    it(`${when} no more small files once a big one has failed`, async () => {
      const { changes, store, target, tmp } = await mixed(`big-fails-${step}`)
      // a.txt reaches the step; then big-0.bin fails; then a.txt goes on.
      let reached!: () => void
      const aReached = new Promise<void>((resolve) => (reached = resolve))
      let failed!: () => void
      const bigFailed = new Promise<void>((resolve) => (failed = resolve))
      const seen: string[] = []
      const atStep = async (path: string): Promise<void> => {
        if (!small.includes(path)) return
        seen.push(path)
        if (path !== 'a.txt') return
        reached()
        await bigFailed
        await new Promise(setImmediate)
      }
      await assert.rejects(applyChanges(changes, {
        share: target.share, tmp, src: store, guard: true,
        hooks: {
          afterPlan: async (path) => {
            if (path === 'big-0.bin') {
              await aReached
              failed()
              throw new Error('the disk went away')
            }
            if (step === 'afterPlan') await atStep(path)
          },
          afterWrite: async (path) => { if (step === 'afterWrite') await atStep(path) }
        }
      }), /the disk went away/)
      // a.txt waited at this step until big-0.bin had failed; b.txt and c.txt never reached it.
      assert.deepEqual(seen, ['a.txt'])
      const there = [...(await contents(target.share)).keys()].filter((name) => small.includes(name))
      assert.deepEqual(there, step === 'afterPlan' ? [] : ['a.txt'])
      assert.deepEqual(await readdir(tmp), [])
    })
  }
})

describe('repo/integrate: a local edit that keeps the size and mtime the guard compares', () => {
  const suite = suiteRepos('left-race-stat-')
  let n = 0

  /**
   * A source and a destination that both hold run.sh (not executable) and
   * a link `current` to `build-a`; the source then changes both. Before the
   * incoming change is applied, the destination makes run.sh executable,
   * or points `current` at `build-c` (a target of the same length): edits
   * that leave size and mtime as they were. No watcher has reported them.
   */
  async function scenario(edit: (share: string) => Promise<void>): Promise<{ dest: Repo; result: Awaited<ReturnType<Repo['integrate']>> }> {
    const source = await suite.repo(`source-${n}`)
    const dest = await suite.repo(`dest-${n++}`)
    await writeFile(join(source.share, 'run.sh'), 'echo v0\n')
    await symlink('build-a', join(source.share, 'current'))
    await suite.bring(source, dest, (await source.commit('v0'))!.cid)
    await writeFile(join(source.share, 'run.sh'), 'echo v1, from the peer\n')
    await rm(join(source.share, 'current'))
    await symlink('build-b', join(source.share, 'current'))
    const remote = (await source.commit('v1'))!
    await suite.fetch(source, dest, remote.cid)
    const changes = new ChangedPaths()
    dest.followChanges(changes)
    assert.equal(await dest.commit(undefined, { changedOnly: true }), undefined)
    await edit(dest.share)
    return { dest, result: await dest.integrate(remote.cid) }
  }

  /** What the folder holds at `path` and in its conflict copies: each file's content and exec bit, or a link's target. */
  async function versions(dest: Repo, path: string): Promise<string[]> {
    const seen = new Set<string>()
    const show = async (abs: string): Promise<string> => {
      const st = await lstat(abs)
      return st.isSymbolicLink() ? `-> ${await readlink(abs)}` : `${await readFile(abs, 'utf8')}${(st.mode & 0o100) !== 0 ? ' (exec)' : ''}`
    }
    const stem = path.replace(/\.[^.]*$/, '')
    for (const name of await readdir(dest.share)) if (name === path || name.startsWith(`${stem}.sync-conflict-`)) seen.add(await show(join(dest.share, name)))
    return [...seen].sort()
  }

  it('keeps a mode change made beside the incoming content', async () => {
    const { dest, result } = await scenario((share) => chmod(join(share, 'run.sh'), 0o755))
    assert.deepEqual(result.skipped, [])
    assert.deepEqual(await versions(dest, 'run.sh'), ['echo v0\n (exec)', 'echo v1, from the peer\n'])
    assert.deepEqual(await dest.status(), [])
  })

  it('keeps a link pointed elsewhere beside the incoming target', async () => {
    const { dest, result } = await scenario(async (share) => {
      await rm(join(share, 'current'))
      await symlink('build-c', join(share, 'current'))
    })
    assert.deepEqual(result.skipped, [])
    assert.deepEqual(await versions(dest, 'current'), ['-> build-b', '-> build-c'])
    assert.deepEqual(await dest.status(), [])
  })
})
