import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { appendFile, chmod, mkdir, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { watchFolder, type FolderWatch, type WatchKind } from '../../src/watch/watcher.js'
import { tempDir } from '../helpers/cli.js'

/** How long a test waits for an event before it fails. */
const EVENT_DEADLINE_MS = 15_000

/** The inotify watches this process holds, from /proc (undefined where there is none). */
function inotifyWatches(): number | undefined {
  if (!existsSync('/proc/self/fdinfo')) return undefined
  let count = 0
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      continue
    }
    if (target !== 'anon_inode:inotify') continue
    count += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((line) => line.startsWith('inotify wd:')).length
  }
  return count
}

/** A watch of `share` that records each reported path. */
interface Watching {
  readonly seen: string[]
  readonly errors: unknown[]
  readonly watch: FolderWatch
  /** Waits until a path that `match` accepts is reported; returns every path reported since the last call, and forgets them. */
  until(match: string | ((path: string) => boolean)): Promise<string[]>
}

async function watching(kind: WatchKind, share: string, ignores?: (path: string, isDir: boolean) => boolean): Promise<Watching> {
  const seen: string[] = []
  const errors: unknown[] = []
  const watch = watchFolder({
    kind,
    share,
    quietMs: 50,
    maxWaitMs: 1_000,
    ignores,
    onChange: (path) => seen.push(path),
    onError: (err) => errors.push(err),
    onQuiet: async () => true
  })
  await watch.ready
  return {
    seen,
    errors,
    watch,
    async until(match) {
      const ok = typeof match === 'string' ? (p: string) => p === match : match
      const deadline = Date.now() + EVENT_DEADLINE_MS
      while (!seen.some(ok)) {
        if (Date.now() > deadline) assert.fail(`not reported: ${String(match)}; reported: ${JSON.stringify(seen)}`)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      return seen.splice(0)
    }
  }
}

/** True when `path` is `target` or a folder above it: a report that covers it. */
const covers = (target: string) => (path: string): boolean => path === target || target.startsWith(`${path}/`)

for (const kind of ['folders', 'chokidar'] as const) {
  // The folder watch is used on Linux only; chokidar everywhere it runs.
  describe(`watch/watcher (${kind})`, { skip: kind === 'folders' && process.platform !== 'linux' }, () => {
    let dir: string
    let cleanup: () => Promise<void>
    let count = 0
    /** A new, empty share folder for each test. */
    const freshShare = async (): Promise<string> => {
      const share = join(dir, `share-${++count}`)
      await mkdir(share)
      return share
    }
    before(async () => ({ dir, cleanup } = await tempDir('left-watcher-')))
    after(() => cleanup())

    it('reports a file made, written to, chmodded and deleted, hidden ones too', async () => {
      const share = await freshShare()
      await mkdir(join(share, '.hidden'))
      // A file for each step, made before the watch: no step's report can
      // stand in for another's.
      for (const name of ['written.txt', 'chmodded.txt', 'deleted.txt']) await writeFile(join(share, name), name)
      const w = await watching(kind, share)
      try {
        await writeFile(join(share, 'made.txt'), 'one')
        await w.until('made.txt')
        await appendFile(join(share, 'written.txt'), 'two')
        await w.until('written.txt')
        await chmod(join(share, 'chmodded.txt'), 0o755)
        await w.until('chmodded.txt')
        await rm(join(share, 'deleted.txt'))
        await w.until('deleted.txt')
        await writeFile(join(share, '.hidden', '.h'), 'h')
        await w.until('.hidden/.h')
        assert.deepEqual(w.errors, [])
      } finally {
        await w.watch.close()
      }
    })

    it('watches a folder made while watching, and reports what was made in it before its watch', async () => {
      const share = await freshShare()
      const w = await watching(kind, share)
      try {
        await mkdir(join(share, 'm', 'a', 'd', 'e'), { recursive: true })
        await writeFile(join(share, 'm', 'a', 'd', 'e', 'f0'), '0')
        await w.until(covers('m/a/d/e/f0'))
        // Moved in whole: every file is there before any watch is. Each is
        // reported by its own path, as the watch weighs files by size to
        // send small ones first.
        const staging = join(dir, `staging-${count}`)
        await mkdir(join(staging, 'e', 's', 't'), { recursive: true })
        await writeFile(join(staging, 'e', 's', 't', 'f1'), '1')
        await rename(staging, join(share, 'n'))
        await w.until('n/e/s/t/f1')
        // Now the deepest folder has a watch of its own.
        await writeFile(join(share, 'n', 'e', 's', 't', 'f2'), '2')
        await w.until('n/e/s/t/f2')
      } finally {
        await w.watch.close()
      }
    })

    it('follows a folder renamed, and one deleted and made again', async () => {
      const share = await freshShare()
      await mkdir(join(share, 'd', 'sub'), { recursive: true })
      const w = await watching(kind, share)
      try {
        await rename(join(share, 'd'), join(share, 'e'))
        await w.until('e')
        await writeFile(join(share, 'e', 'sub', 'x'), 'x')
        // Under its new name only: no watch goes on under the old one.
        assert.ok(!(await w.until('e/sub/x')).includes('d/sub/x'))
        await rm(join(share, 'e'), { recursive: true })
        await w.until(covers('e'))
        await mkdir(join(share, 'e', 'sub'), { recursive: true })
        await w.until(covers('e/sub'))
        await writeFile(join(share, 'e', 'sub', 'y'), 'y')
        await w.until('e/sub/y')
      } finally {
        await w.watch.close()
      }
    })

    // chokidar 5 goes on taking `p` for the file it saw last: the new
    // folder's files are never reported (until the watch's hourly whole scan).
    const chokidarMisses = kind === 'chokidar' && 'chokidar does not watch a folder made where a file was'
    it('watches anew a folder deleted and made again at once, on the inode number it had', { skip: kind === 'chokidar' && 'chokidar does not watch the new folder' }, async () => {
      const share = await freshShare()
      await mkdir(join(share, 'k'))
      await writeFile(join(share, 'k', 'old'), 'old')
      const w = await watching(kind, share)
      try {
        // In one turn, so the events are read once both are done; ext4
        // gives the new folder the inode number just freed.
        rmSync(join(share, 'k'), { recursive: true })
        mkdirSync(join(share, 'k'))
        writeFileSync(join(share, 'k', 'first'), 'first')
        await w.until(covers('k/first'))
        await writeFile(join(share, 'k', 'z'), 'z')
        await w.until('k/z')
      } finally {
        await w.watch.close()
      }
    })

    it('follows a folder replaced by a file and the file by a folder', { skip: chokidarMisses }, async () => {
      const share = await freshShare()
      await mkdir(join(share, 'p'))
      const w = await watching(kind, share)
      try {
        await rm(join(share, 'p'), { recursive: true })
        await writeFile(join(share, 'p'), 'file now')
        await w.until('p')
        await rm(join(share, 'p'))
        await mkdir(join(share, 'p'))
        await w.until('p')
        await writeFile(join(share, 'p', 'in'), 'in')
        await w.until('p/in')
      } finally {
        await w.watch.close()
      }
    })

    it('reports a file named as its folder, made and deleted', async () => {
      const share = await freshShare()
      await mkdir(join(share, 'photos'))
      const w = await watching(kind, share)
      try {
        await writeFile(join(share, 'photos', 'photos'), 'same name')
        // The folder watch names the file itself; chokidar's own watch of
        // the file cannot be told from the folder's, so it names the folder.
        await w.until(kind === 'folders' ? 'photos/photos' : covers('photos/photos'))
        await rm(join(share, 'photos', 'photos'))
        await w.until(covers('photos/photos'))
      } finally {
        await w.watch.close()
      }
    })

    it('neither watches nor reports an ignored folder, nor follows a symlink out of the share', async () => {
      const share = await freshShare()
      const outside = join(dir, `outside-${count}`)
      await mkdir(outside)
      await mkdir(join(share, 'skip', 'deep'), { recursive: true })
      await symlink(outside, join(share, 'link'))
      const ignored = (path: string): boolean => path === 'skip' || path.startsWith('skip/')
      const before = inotifyWatches()
      const w = await watching(kind, share, ignored)
      try {
        // The share folder alone: neither skip, skip/deep nor the link's target.
        if (kind === 'folders' && before !== undefined) assert.equal(inotifyWatches()! - before, 1)
        await writeFile(join(share, 'skip', 'deep', 'a'), 'a')
        await writeFile(join(outside, 'b'), 'b')
        // Events arrive in order: once this one is here, the others would be.
        await writeFile(join(share, 'sentinel'), 's')
        const all = await w.until('sentinel')
        assert.deepEqual(all.filter((p) => p.startsWith('skip/') || p.startsWith('link/')), [])
      } finally {
        await w.watch.close()
      }
    })

    it('reports a folder deleted as the folder, with no made-up child of its name', async () => {
      const share = await freshShare()
      await mkdir(join(share, 'k', 'inner'), { recursive: true })
      await writeFile(join(share, 'k', 'inner', 'f'), 'f')
      const w = await watching(kind, share)
      try {
        // The folder's own watch tells of its deletion first, named `k`.
        await rm(join(share, 'k'), { recursive: true })
        await writeFile(join(share, 'sentinel'), 's')
        const all = await w.until('sentinel')
        assert.ok(all.includes('k'), JSON.stringify(all))
        assert.deepEqual(all.filter((p) => p === 'k/k' || p === 'k/inner/inner'), [])
      } finally {
        await w.watch.close()
      }
    })

    it('does not report the files of a folder again when the folder is chmodded or touched', async () => {
      const share = await freshShare()
      await mkdir(join(share, 'big', 'sub'), { recursive: true })
      for (let i = 0; i < 20; i++) await writeFile(join(share, 'big', `f${i}`), `${i}`)
      const w = await watching(kind, share)
      try {
        await chmod(join(share, 'big'), 0o700)
        await utimes(join(share, 'big', 'sub'), new Date(), new Date())
        await writeFile(join(share, 'sentinel'), 's')
        const all = await w.until('sentinel')
        // The folders themselves, or a folder above them, are reported.
        assert.ok(all.some(covers('big')) && all.some(covers('big/sub')), JSON.stringify(all))
        assert.deepEqual(all.filter((p) => p.startsWith('big/f')), [])
        // Still watched: a file made in either folder now is reported.
        await writeFile(join(share, 'big', 'new'), 'n')
        await w.until('big/new')
        await writeFile(join(share, 'big', 'sub', 'new'), 'n')
        await w.until('big/sub/new')
      } finally {
        await w.watch.close()
      }
    })

    it('reports a file replaced by a folder the rules ignore', async () => {
      const share = await freshShare()
      await writeFile(join(share, 'build'), 'a file')
      const foldersOnly = (path: string, isDir: boolean): boolean => isDir && path === 'build'
      const w = await watching(kind, share, foldersOnly)
      try {
        // In one turn: the events are read once both are done.
        unlinkSync(join(share, 'build'))
        mkdirSync(join(share, 'build'))
        await w.until('build')
      } finally {
        await w.watch.close()
      }
    })

    it('reports a folder made and deleted whose name the rules ignore for files only', async () => {
      const share = await freshShare()
      await mkdir(join(share, 'old.d'))
      const filesOnly = (path: string, isDir: boolean): boolean => !isDir && path.endsWith('.d')
      const w = await watching(kind, share, filesOnly)
      try {
        await rm(join(share, 'old.d'), { recursive: true })
        await w.until('old.d')
        await mkdir(join(share, 'new.d'))
        await w.until('new.d')
        await writeFile(join(share, 'new.d', 'in'), 'in')
        await w.until('new.d/in')
      } finally {
        await w.watch.close()
      }
    })

    it('reads the event a folder has about itself as about the folder, not a child of its name', async () => {
      const share = await freshShare()
      await mkdir(join(share, 'd'))
      const w = await watching(kind, share)
      try {
        // The folder's own watch would name it `d`, as it would a child d/d.
        await chmod(join(share, 'd'), 0o700)
        await writeFile(join(share, 'sentinel'), 's')
        const all = await w.until('sentinel')
        assert.ok(all.includes('d'), JSON.stringify(all))
        assert.deepEqual(all.filter((p) => p.startsWith('d/')), [])
      } finally {
        await w.watch.close()
      }
    })

    it('watches through a share folder that is a symlink', async () => {
      const real = await freshShare()
      await mkdir(join(real, 'sub'))
      const share = join(dir, `linked-${count}`)
      await symlink(real, share)
      const w = await watching(kind, share)
      try {
        await writeFile(join(real, 'sub', 'x'), 'x')
        await w.until('sub/x')
      } finally {
        await w.watch.close()
      }
    })

    it('says so when the share folder cannot be watched', { skip: kind === 'chokidar' && 'chokidar waits for a missing path to appear' }, async () => {
      const w = await watching(kind, join(dir, 'no-such-share'))
      try {
        assert.deepEqual(w.errors.map((e) => (e as NodeJS.ErrnoException).code), ['ENOENT'])
      } finally {
        await w.watch.close()
      }
    })

    it('says so when the share folder is moved away while watched', { skip: kind === 'chokidar' && 'chokidar says nothing' }, async () => {
      const share = await freshShare()
      const w = await watching(kind, share)
      try {
        // In one turn: when the event is read, a new folder is at its path.
        renameSync(share, `${share}-moved`)
        mkdirSync(share)
        const deadline = Date.now() + EVENT_DEADLINE_MS
        while (w.errors.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
        assert.match(String(w.errors[0]), /share folder .* was moved or deleted/)
        assert.equal(w.errors.length, 1)
      } finally {
        await w.watch.close()
      }
    })

    it(kind === 'folders' ? 'holds one watch per folder, none per file, and none once closed' : 'holds a watch per file, and none once closed', async (t) => {
      const before = inotifyWatches()
      if (before === undefined) return t.skip('no /proc here')
      const share = await freshShare()
      await mkdir(join(share, 'a', 'b'), { recursive: true })
      for (let i = 0; i < 40; i++) await writeFile(join(share, i % 2 === 0 ? 'a' : 'a/b', `f${i}`), `${i}`)
      const w = await watching(kind, share)
      const held = inotifyWatches()! - before
      await w.watch.close()
      // The share, a and a/b; chokidar adds one for each of the 40 files.
      if (kind === 'folders') assert.equal(held, 3)
      else assert.ok(held >= 40, `chokidar held ${held} watches`)
      assert.equal(inotifyWatches(), before)
    })
  })
}
