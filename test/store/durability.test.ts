import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers/cli.js'

const STORE_MODULE = fileURLToPath(new URL('../../src/store/store.js', import.meta.url))
const OBJECT_MODULE = fileURLToPath(new URL('../../src/object/index.js', import.meta.url))
const REPO_MODULE = fileURLToPath(new URL('../../src/repo/repo.js', import.meta.url))
const hasStrace = spawnSync('strace', ['-V']).status === 0

/**
 * A power cut can only be simulated by the order of what reaches the disk:
 * strace shows which LevelDB log each write and each fdatasync touches, in
 * order, for a real store on a real filesystem.
 */
describe('store: durable write order (issue 8 item 7, power loss)', () => {
  it('syncs chunk data before the index entries that point at it, and syncs every write that moves a ref, and gc\'s index deletions before its data deletions', { skip: !hasStrace && 'strace is not installed (apt-get install strace)' }, async () => {
    const { dir, cleanup } = await tempDir('left-durable-')
    try {
      const script = join(dir, 'writes.mjs')
      await writeFile(script, `
        import { Store } from ${JSON.stringify(STORE_MODULE)}
        import { RAW, cidOf } from ${JSON.stringify(OBJECT_MODULE)}
        const store = await Store.open(${JSON.stringify(join(dir, 'store'))}, { create: true })
        const bytes = new TextEncoder().encode('a chunk that must outlive a power cut')
        const cid = cidOf(RAW, bytes)
        process.stderr.write('MARK chunk\\n')
        await store.write({ blocks: [{ cid, bytes }] })
        process.stderr.write('MARK ref\\n')
        await store.write({ refs: { HEAD: cid } })
        process.stderr.write('MARK gc\\n')
        await store.deleteObjects([cid])
        process.stderr.write('MARK end\\n')
        await store.close()
      `)
      const run = spawnSync('strace', ['-f', '-y', '-e', 'trace=write,fsync,fdatasync', process.execPath, script], { encoding: 'utf8' })
      assert.equal(run.status, 0, run.stderr)
      // One line per event: "mark NAME", or "<syscall> <db>" for the LevelDB logs.
      const events: string[] = []
      for (const line of run.stderr.split('\n')) {
        const mark = /^MARK (\w+)/.exec(line) ?? /write\(2<[^>]*>, "MARK (\w+)/.exec(line)
        if (mark !== null) {
          if (events.at(-1) !== `mark ${mark[1]}`) events.push(`mark ${mark[1]}`)
          continue
        }
        const io = /(write|fsync|fdatasync)\(\d+<[^>]*\/(chunks|index)\/\d+\.log>/.exec(line)
        if (io !== null) events.push(`${io[1] === 'write' ? 'write' : 'sync'} ${io[2]}`)
      }
      const between = (from: string, to: string): string[] => events.slice(events.indexOf(`mark ${from}`) + 1, events.indexOf(`mark ${to}`))
      // The chunk's data is on disk before the index entry that points at it is written.
      assert.deepEqual(between('chunk', 'ref'), ['write chunks', 'sync chunks', 'write index'], events.join('\n'))
      // A ref moves durably, so everything written before it is durable too.
      assert.deepEqual(between('ref', 'gc'), ['write index', 'sync index'], events.join('\n'))
      // gc: the index forgets the object durably before its data is deleted.
      assert.deepEqual(between('gc', 'end').slice(0, 3), ['write index', 'sync index', 'write chunks'], events.join('\n'))
    } finally {
      await cleanup()
    }
  })

  it('marks a checkout durably before it writes, and syncs the files it wrote and their directories before HEAD moves', { skip: !hasStrace && 'strace is not installed (apt-get install strace)' }, async () => {
    const { dir, cleanup } = await tempDir('left-durable-')
    try {
      const script = join(dir, 'checkout.mjs')
      await writeFile(script, `
        import { writeFile } from 'node:fs/promises'
        import { join } from 'node:path'
        import { Repo } from ${JSON.stringify(REPO_MODULE)}
        const repo = await Repo.init(${JSON.stringify(join(dir, 'folder'))})
        await writeFile(join(repo.share, 'f.txt'), 'one')
        await repo.commit('one')
        await writeFile(join(repo.share, 'f.txt'), 'two, longer')
        await repo.commit('two')
        process.stderr.write('MARK checkout\\n')
        await repo.checkout('HEAD~1')
        process.stderr.write('MARK end\\n')
        await repo.close()
      `)
      const run = spawnSync('strace', ['-f', '-y', '-e', 'trace=write,fsync,fdatasync,rename', process.execPath, script], { encoding: 'utf8' })
      assert.equal(run.status, 0, run.stderr)
      const events: string[] = []
      let on = false
      for (const line of run.stderr.split('\n')) {
        if (/MARK checkout/.test(line)) on = true
        if (/MARK end/.test(line)) on = false
        if (!on) continue
        // Calls made at once print as "<unfinished ...>" first.
        if (/rename\(".*\.tmp", ".*\/share\/f\.txt"\)/.test(line)) events.push('rename f.txt')
        else if (/(fsync|fdatasync)\(\d+<[^>]*\/share\/f\.txt>(\)| <unfinished)/.test(line)) events.push('sync f.txt')
        else if (/(fsync|fdatasync)\(\d+<[^>]*\/share>(\)| <unfinished)/.test(line)) events.push('sync share')
        else if (/(fsync|fdatasync)\(\d+<[^>]*\/index\/\d+\.log>(\)| <unfinished)/.test(line)) events.push('sync index')
      }
      // CHECKOUT is set durably before a file is written; the file, then its
      // directory, are synced once written, and before HEAD moves.
      assert.deepEqual(events, ['sync index', 'rename f.txt', 'sync f.txt', 'sync share', 'sync index'], run.stderr.split('\n').filter((l) => /rename|sync/.test(l)).join('\n'))
    } finally {
      await cleanup()
    }
  })

  /**
   * Runs `steps` (a module body with `repo` open, writing MARK lines) under
   * strace, and returns per marked window the renames into share/ and the
   * syncs of share/, its files, temp files and the index log, in order.
   */
  async function traceWindows(steps: string): Promise<Record<string, string[]>> {
    const { dir, cleanup } = await tempDir('left-durable-')
    try {
      const script = join(dir, 'steps.mjs')
      await writeFile(script, `
        import { writeFile } from 'node:fs/promises'
        import { join } from 'node:path'
        import { Repo } from ${JSON.stringify(REPO_MODULE)}
        const repo = await Repo.init(${JSON.stringify(join(dir, 'folder'))})
        const mark = (name) => process.stderr.write('MARK ' + name + '\\n')
        ${steps}
        mark('end')
        await repo.close()
      `)
      const run = spawnSync('strace', ['-f', '-y', '-e', 'trace=write,rename,fsync,fdatasync', process.execPath, script], { encoding: 'utf8' })
      assert.equal(run.status, 0, run.stderr)
      const windows: Record<string, string[]> = {}
      let on: string[] | undefined
      for (const line of run.stderr.split('\n')) {
        const mark = /MARK (\w+)/.exec(line)
        if (mark !== null) {
          on = mark[1] === 'end' ? undefined : (windows[mark[1]!] ??= [])
          continue
        }
        if (on === undefined) continue
        const made = /rename\(".*\.tmp", ".*\/share\/([\w/]+\.txt)"\)/.exec(line)
        // Calls made at once print as "<unfinished ...>" first.
        const synced = /(?:fsync|fdatasync)\(\d+<[^>]*\/(share(?:\/[\w/]+(?:\.txt)?)?|index\/\d+\.log)>(?:\)| <unfinished)/.exec(line)
        const tmp = /(?:fsync|fdatasync)\(\d+<[^>]*\/\.left\/tmp\/[^>]*\.tmp>(?:\)| <unfinished)/.test(line)
        if (made !== null) on.push(`rename ${made[1]}`)
        else if (tmp) on.push('sync tmp')
        else if (synced !== null) on.push(`sync ${synced[1]!.replace(/^share\//, '').replace(/^index.*/, 'index')}`)
      }
      return windows
    } finally {
      await cleanup()
    }
  }

  it('syncs the files a checkout cut short wrote when it is finished, before its mark and HEAD move', { skip: !hasStrace && 'strace is not installed (apt-get install strace)' }, async () => {
    const windows = await traceWindows(`
      await writeFile(join(repo.share, 'keep.txt'), 'kept')
      const one = (await repo.commit('one')).cid.toString()
      await writeFile(join(repo.share, 'a.txt'), 'first new file')
      await writeFile(join(repo.share, 'b.txt'), 'second new file')
      const two = (await repo.commit('two')).cid.toString()
      await repo.checkout(one)
      mark('cut')
      let written = 0
      await repo.checkout(two, false, { onWrite: () => { if (++written === 1) throw new Error('cut') } }).catch(() => {})
      mark('finish')
      await repo.checkout(two)
    `)
    const show = JSON.stringify(windows)
    // The cut run marks itself durably, then renames a.txt into place, and is cut before any file is synced.
    assert.deepEqual(windows.cut, ['sync index', 'rename a.txt'], show)
    // Finishing first syncs what the cut run wrote (a.txt) and its folder,
    // then marks itself, writes only b.txt and syncs it, and moves HEAD last.
    assert.deepEqual(windows.finish, ['sync a.txt', 'sync share', 'sync index', 'rename b.txt', 'sync b.txt', 'sync share', 'sync index'], show)
  })

  it('syncs an edit a forced checkout cut short reverted, when a forced checkout of another commit ends it', { skip: !hasStrace && 'strace is not installed (apt-get install strace)' }, async () => {
    const windows = await traceWindows(`
      await writeFile(join(repo.share, 'keep.txt'), 'kept')
      const one = (await repo.commit('one')).cid.toString()
      await writeFile(join(repo.share, 'a.txt'), 'a new file')
      const two = (await repo.commit('two')).cid.toString()
      await repo.checkout(one)
      await writeFile(join(repo.share, 'keep.txt'), 'an edit the forced checkout reverts')
      mark('cut')
      let written = 0
      await repo.checkout(two, true, { onWrite: () => { if (++written === 2) throw new Error('cut') } }).catch(() => {})
      mark('other')
      await repo.checkout(one, true)
    `)
    const show = JSON.stringify(windows)
    // keep.txt is the same in HEAD and the target, yet the forced run rewrote it.
    assert.deepEqual(windows.cut, ['sync index', 'rename a.txt', 'rename keep.txt'], show)
    // Checking out another commit syncs it (and a.txt) before its own mark.
    const other = windows.other!
    assert.ok(other.includes('sync keep.txt') && other.indexOf('sync keep.txt') < other.indexOf('sync index'), show)
  })

  it('fsyncs each file a restore writes in its temp file, before it renames any of the batch into place', { skip: !hasStrace && 'strace is not installed (apt-get install strace)' }, async () => {
    const windows = await traceWindows(`
      const { mkdir, rm } = await import('node:fs/promises')
      await mkdir(join(repo.share, 'd'))
      await writeFile(join(repo.share, 'd', 'a.txt'), 'first file')
      await writeFile(join(repo.share, 'd', 'b.txt'), 'second file')
      await repo.commit('two')
      await rm(join(repo.share, 'd'), { recursive: true })
      mark('restore')
      await repo.restore('d')
    `)
    // Integrate and restore have no mark to finish them by: a power cut
    // after a rename must find the whole file, so its content is on disk first.
    const events = windows.restore!.filter((e) => e !== 'sync index')
    assert.deepEqual(events.slice(0, 4), ['sync tmp', 'sync tmp', 'rename d/a.txt', 'rename d/b.txt'], JSON.stringify(windows))
    // Then the folders the renames changed, in either order (they are synced at once).
    assert.deepEqual(events.slice(4).sort(), ['sync d', 'sync share'], JSON.stringify(windows))
  })
})
