import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmod, mkdir, readFile, readdir, rename, rm, stat, symlink, utimes, writeFile, open } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { Repo, Store, cidFromBytes, cidOf, RAW } from '../../src/index.js'
import { LEFT_BIN, assertOneLineError, commitOk, inNewFolder, left, leftOk, tempDir, statusChanges } from '../helpers/cli.js'
import { seededBytes } from '../helpers/data.js'
import { dirSize, sleep } from '../helpers/peers.js'
import { describeTree } from '../helpers/tree.js'

async function fillShare(share: string): Promise<void> {
  await mkdir(join(share, 'docs/deep/er'), { recursive: true })
  await mkdir(join(share, '.hidden-dir'), { recursive: true })
  await mkdir(join(share, 'empty-dir'), { recursive: true })
  await writeFile(join(share, 'readme.txt'), 'hello\n')
  await writeFile(join(share, '.dotfile'), 'secret')
  await writeFile(join(share, '.hidden-dir/inside'), 'hidden content')
  await writeFile(join(share, 'docs/deep/er/data.bin'), seededBytes('data', 300_000))
  await writeFile(join(share, 'empty-file'), '')
  await writeFile(join(share, 'run.sh'), '#!/bin/sh\necho hi\n')
  await chmod(join(share, 'run.sh'), 0o755)
  await symlink('docs/deep/er/data.bin', join(share, 'link-to-data'))
  await symlink('/etc/passwd', join(share, 'abs-link'))
}

describe('cli: init and key', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => ({ dir, cleanup } = await tempDir()))
  after(() => cleanup())

  it('creates .left/ and share/ beside it, and refuses a second init without changing anything', async () => {
    await leftOk(dir, ['init'])
    assert.ok((await stat(join(dir, '.left/store'))).isDirectory())
    assert.ok((await stat(join(dir, 'share'))).isDirectory())
    assert.equal((await stat(join(dir, '.left/config'))).mode & 0o777, 0o600)
    assert.equal((await stat(join(dir, '.left'))).mode & 0o777, 0o700, 'history is private to its owner')
    const config = await readFile(join(dir, '.left/config'), 'utf8')
    assertOneLineError(await left(dir, ['init']), /already a LEFT folder/)
    assert.equal(await readFile(join(dir, '.left/config'), 'utf8'), config)
  })

  it('prints the generated key, and init --key uses a given one', async () => {
    const key = await leftOk(dir, ['key'])
    assert.match(key, /^[A-Za-z0-9_-]{43}$/)
    const { dir: other, cleanup: c2 } = await tempDir()
    try {
      await leftOk(other, ['init', '--key', key])
      assert.equal(await leftOk(other, ['key']), key)
      assertOneLineError(await left(join(other, 'share'), ['init', '--key', 'short']), /folder key must be/)
    } finally {
      await c2()
    }
  })

  it('works from another directory with -C, and fails clearly outside a LEFT folder', async () => {
    const { dir: outside, cleanup: c2 } = await tempDir()
    try {
      assert.equal(await leftOk(outside, ['-C', dir, 'key']), await leftOk(dir, ['key']))
      assertOneLineError(await left(outside, ['status']), /not a LEFT folder/)
      assertOneLineError(await left(outside, ['frobnicate']), /unknown command/)
      assertOneLineError(await left(outside, ['-C', dir, 'log', '-n', 'x']), /positive whole number/)
      // init -C a directory that does not exist yet creates it.
      await leftOk(outside, ['-C', join(outside, 'new/laptop'), 'init'])
      assert.ok((await stat(join(outside, 'new/laptop/share'))).isDirectory())
    } finally {
      await c2()
    }
  })

  it('refuses a share folder on another filesystem than .left/, leaving no .left/', async (t) => {
    const other = '/dev/shm'
    const devOf = async (p: string) => (await stat(p).catch(() => undefined))?.dev
    if ((await devOf(other)) === undefined || (await devOf(other)) === (await devOf(dir))) return t.skip('no second filesystem at /dev/shm')
    const { dir: d, cleanup: c2 } = await tempDir()
    const share = join(other, `left-test-${process.pid}-${Date.now()}`)
    try {
      assertOneLineError(await left(d, ['init', '--share', share]), /on another filesystem/)
      await assert.rejects(stat(join(d, '.left')))
    } finally {
      await rm(share, { recursive: true, force: true })
      await c2()
    }
  })

  it('accepts an existing share folder with files via --share', async () => {
    const { dir: d, cleanup: c2 } = await tempDir()
    try {
      await mkdir(join(d, 'photos'))
      await writeFile(join(d, 'photos/a.jpg'), 'jpeg')
      await leftOk(d, ['init', '--share', 'photos'])
      assert.match(await statusChanges(d), /^A a\.jpg$/m)
      assert.match(await leftOk(d, ['commit']), /^\[[a-z2-7]{8,}\] add a\.jpg \(1 added, 0 modified, 0 deleted\)$/)
    } finally {
      await c2()
    }
  })
})

describe('cli: commit, log, status, diff', () => {
  let dir: string
  let share: string
  let cleanup: () => Promise<void>
  before(async () => {
    ({ dir, cleanup } = await tempDir())
    await leftOk(dir, ['init'])
    share = join(dir, 'share')
  })
  after(() => cleanup())

  it('says nothing to commit for an empty folder, then commits hidden files, empty dirs, links and exec bits', async () => {
    assert.equal(await leftOk(dir, ['commit']), 'nothing to commit')
    await fillShare(share)
    const id = await commitOk(dir, ['-m', 'first'])
    assert.match(id, /^bafyrei[a-z2-7]+$/)
    assert.equal(await leftOk(dir, ['commit']), 'nothing to commit')
    assert.equal(await statusChanges(dir), 'nothing to commit, share folder clean')
    const log = JSON.parse(await leftOk(dir, ['log', '--json']))
    assert.equal(log.length, 1)
    assert.equal(log[0].id, id)
    assert.deepEqual(log[0].parents, [])
    assert.equal(log[0].message, 'first')
    assert.equal(log[0].added, 8) // files and links; directories are not counted
    assert.match(log[0].time, /^\d{4}-\d\d-\d\dT/)
    assert.equal(typeof log[0].author, 'string')
  })

  it('shows added, modified and deleted paths in status and diff, then commits them', async () => {
    await writeFile(join(share, 'readme.txt'), 'hello again\n')
    await rm(join(share, '.dotfile'))
    await writeFile(join(share, 'new.txt'), 'new')
    await mkdir(join(share, 'new-empty'))
    const status = (await statusChanges(dir)).split('\n')
    assert.deepEqual(status, ['D .dotfile', 'A new-empty/', 'A new.txt', 'M readme.txt'])
    const json = JSON.parse(await leftOk(dir, ['status', '--json'])).changes
    assert.deepEqual(json.map((c: { change: string }) => c.change), ['deleted', 'added', 'added', 'modified'])
    const second = await commitOk(dir, ['-m', 'second'])
    const log = JSON.parse(await leftOk(dir, ['log', '--json']))
    assert.equal(log[0].id, second)
    assert.deepEqual([log[0].added, log[0].modified, log[0].deleted], [1, 1, 1])
    assert.deepEqual(log[0].parents, [log[1].id])
    const diff = await leftOk(dir, ['diff', log[1].id.slice(0, 20), 'HEAD'])
    assert.deepEqual(diff.split('\n'), status)
    assert.equal(JSON.parse(await leftOk(dir, ['log', '-n', '1', '--json'])).length, 1)
    assert.match(await leftOk(dir, ['log']), /Author: .*\nDate: .*UTC\nChange: 1 added, 1 modified, 1 deleted\n\n {4}second/)
  })

  it('treats a touched file as modified (mtime is part of the snapshot)', async () => {
    const future = new Date(Date.now() + 60_000)
    await utimes(join(share, 'new.txt'), future, future)
    assert.equal(await statusChanges(dir), 'M new.txt')
    await leftOk(dir, ['commit'])
  })

  it('rejects unknown, malformed and ambiguous commit ids with one line', async () => {
    assertOneLineError(await left(dir, ['diff', 'bafyreinotacommit']), /unknown commit/)
    assertOneLineError(await left(dir, ['checkout', 'zzz']), /unknown commit/)
    assertOneLineError(await left(dir, ['diff', 'bafyrei']), /ambiguous commit prefix/)
    assertOneLineError(await left(dir, ['checkout', 'HEAD~9']), /unknown commit/)
  })
})

describe('cli: the stat cache', () => {
  it('remembers each committed file and folder, and forgets the files and whole folders that went, and only those', async () => {
    await inNewFolder(async (dir) => {
      const share = join(dir, 'share')
      for (const path of ['top', 'a-b', 'a/x', 'a/b/y', 'a/b/c/z', 'a0']) {
        await mkdir(join(share, path, '..'), { recursive: true })
        await writeFile(join(share, path), path)
      }
      // Files changed within 100 ms of a scan are not cached (racy clean).
      await sleep(250)
      const cached = async (): Promise<string[]> => {
        const store = await Store.open(join(dir, '.left/store'))
        try {
          return [...(await store.loadStatCache()).keys()].sort()
        } finally {
          await store.close()
        }
      }
      await commitOk(dir)
      // A directory's own entry is its path and a slash ('' for the top).
      assert.deepEqual(await cached(), ['', 'a-b', 'a/', 'a/b/', 'a/b/c/', 'a/b/c/z', 'a/b/y', 'a/x', 'a0', 'top'])
      await rm(join(share, 'a/b'), { recursive: true })
      await rm(join(share, 'top'))
      await commitOk(dir)
      assert.deepEqual(await cached(), ['', 'a-b', 'a/', 'a/x', 'a0'])
      // A folder where a file was (and the other way round) is read anew.
      await rm(join(share, 'a-b'))
      await mkdir(join(share, 'a-b'))
      await writeFile(join(share, 'a-b', 'in'), 'in')
      await rm(join(share, 'a'), { recursive: true })
      await writeFile(join(share, 'a'), 'a file now')
      await sleep(250)
      await commitOk(dir)
      assert.deepEqual(await cached(), ['', 'a', 'a-b/', 'a-b/in', 'a0'])
      assert.equal(await statusChanges(dir), 'nothing to commit, share folder clean')
    })
  })
})

describe('cli: .leftignore', () => {
  it('keeps matching paths out of status and commit, commits .leftignore itself, and never reads one through a link', async () => {
    await inNewFolder(async (dir) => {
      const share = join(dir, 'share')
      await writeFile(join(share, '.leftignore'), '*.tmp\nbuild/\n')
      await writeFile(join(share, 'keep.txt'), 'keep')
      await writeFile(join(share, 'scratch.tmp'), 'scratch')
      await mkdir(join(share, 'build'))
      await writeFile(join(share, 'build/out.bin'), 'out')
      assert.equal(await statusChanges(dir), 'A .leftignore\nA keep.txt')
      await leftOk(dir, ['commit'])
      assert.equal(await statusChanges(dir), 'nothing to commit, share folder clean')
      // A .leftignore that is a symlink is not followed: its target's lines are not rules.
      await writeFile(join(dir, 'outside-rules'), 'keep.txt\n')
      await rm(join(share, '.leftignore'))
      await symlink(join(dir, 'outside-rules'), join(share, '.leftignore'))
      const status = await statusChanges(dir)
      assert.match(status, /^A scratch\.tmp$/m)
      assert.doesNotMatch(status, /keep\.txt/)
    })
  })

  it('item 4: checkout without --force leaves ignored files, and the folders that hold them, where they are', async () => {
    await inNewFolder(async (dir) => {
      const share = join(dir, 'share')
      // A device-local rule in .left/ignore: it holds across checkouts, as it is not in history.
      await writeFile(join(dir, '.left/ignore'), '*.log\n')
      await writeFile(join(share, 'x.txt'), 'x')
      const one = await commitOk(dir)
      await mkdir(join(share, 'build'))
      await writeFile(join(share, 'build/a.txt'), 'tracked')
      await writeFile(join(share, 'build/notes.log'), 'ignored notes')
      const two = await commitOk(dir)
      const back = await left(dir, ['checkout', one])
      assert.equal(back.code, 0, back.stderr)
      assert.match(back.stderr, /^left: kept build as it is/m)
      assert.deepEqual(await readdir(join(share, 'build')), ['notes.log'])
      assert.equal(await statusChanges(dir), 'nothing to commit, share folder clean')
      await leftOk(dir, ['checkout', two])
      assert.equal(await readFile(join(share, 'build/a.txt'), 'utf8'), 'tracked')
      await leftOk(dir, ['checkout', '--force', one])
      await assert.rejects(stat(join(share, 'build')), { code: 'ENOENT' }, '--force makes the folder exactly the commit')
    })
  })

  it('item 4: restore refuses to delete uncommitted files unless --force', async () => {
    await inNewFolder(async (dir) => {
      const share = join(dir, 'share')
      await writeFile(join(share, 'a'), 'the committed file')
      await leftOk(dir, ['commit'])
      await rm(join(share, 'a'))
      await mkdir(join(share, 'a'))
      await writeFile(join(share, 'a/draft.txt'), 'uncommitted draft')
      assertOneLineError(await left(dir, ['restore', 'a']), /1 uncommitted change\(s\) \(a\/draft\.txt\); commit them or use --force/)
      assert.equal(await readFile(join(share, 'a/draft.txt'), 'utf8'), 'uncommitted draft')
      // Once the draft is committed, history holds it, so replacing the folder loses nothing.
      await leftOk(dir, ['commit'])
      await leftOk(dir, ['restore', '--source', 'HEAD~1', 'a'])
      assert.equal(await readFile(join(share, 'a'), 'utf8'), 'the committed file')
      await leftOk(dir, ['restore', 'a'])
      assert.equal(await readFile(join(share, 'a/draft.txt'), 'utf8'), 'uncommitted draft')
      await writeFile(join(share, 'a/draft.txt'), 'edited again')
      await leftOk(dir, ['restore', '--force', '--source', 'HEAD~1', 'a'])
      assert.equal(await readFile(join(share, 'a'), 'utf8'), 'the committed file')
    })
  })
})

describe('cli: checkout and restore', () => {
  let dir: string
  let share: string
  let cleanup: () => Promise<void>
  let first: string
  let second: string
  before(async () => {
    ({ dir, cleanup } = await tempDir())
    await leftOk(dir, ['init'])
    share = join(dir, 'share')
    await fillShare(share)
    first = await commitOk(dir, ['-m', 'one'])
  })
  after(() => cleanup())

  it('goes back and forth between commits, restoring content, exec bits, links, empty dirs and mtimes', async () => {
    const snapshotOne = await describeTree(share, { mtimes: true })
    await writeFile(join(share, 'readme.txt'), 'changed')
    await rm(join(share, 'docs'), { recursive: true })
    await rm(join(share, 'empty-dir'), { recursive: true })
    await chmod(join(share, 'run.sh'), 0o644)
    await writeFile(join(share, 'added.bin'), seededBytes('added', 100_000))
    second = await commitOk(dir, ['-m', 'two'])
    const snapshotTwo = await describeTree(share, { mtimes: true })
    assert.match(await leftOk(dir, ['checkout', first.slice(0, 12)]), /^HEAD is now [a-z2-7]{8,} \(/)
    assert.deepEqual(await describeTree(share, { mtimes: true }), snapshotOne)
    assert.equal(await statusChanges(dir), 'nothing to commit, share folder clean')
    await leftOk(dir, ['checkout', second])
    assert.deepEqual(await describeTree(share, { mtimes: true }), snapshotTwo)
    await leftOk(dir, ['checkout', first])
    assert.deepEqual(await describeTree(share, { mtimes: true }), snapshotOne)
    assert.deepEqual(await readdir(join(dir, '.left/tmp')), [], 'temp files are cleaned up')
  })

  it('refuses to overwrite uncommitted changes unless forced', async () => {
    await writeFile(join(share, 'readme.txt'), 'precious local edit')
    assertOneLineError(await left(dir, ['checkout', second]), /uncommitted change/)
    assert.equal(await readFile(join(share, 'readme.txt'), 'utf8'), 'precious local edit')
    await leftOk(dir, ['checkout', '--force', second])
    assert.equal(await readFile(join(share, 'readme.txt'), 'utf8'), 'changed')
  })

  it('restores one file and one folder from HEAD or another commit', async () => {
    await writeFile(join(share, 'readme.txt'), 'scribble')
    await leftOk(dir, ['restore', 'readme.txt'])
    assert.equal(await readFile(join(share, 'readme.txt'), 'utf8'), 'changed')
    await leftOk(dir, ['restore', 'docs', '--source', first])
    assert.deepEqual(await readFile(join(share, 'docs/deep/er/data.bin')), seededBytes('data', 300_000))
    assert.equal(await statusChanges(dir), 'A docs/\nA docs/deep/\nA docs/deep/er/\nA docs/deep/er/data.bin')
    assertOneLineError(await left(dir, ['restore', 'no/such/file']), /no such path/)
  })

  it('restores a folder without deleting new files the source never had', async () => {
    await writeFile(join(share, 'docs/deep/er/data.bin'), 'scribble')
    await writeFile(join(share, 'docs/new-notes.txt'), 'not committed anywhere')
    await leftOk(dir, ['restore', 'docs', '--source', first])
    assert.deepEqual(await readFile(join(share, 'docs/deep/er/data.bin')), seededBytes('data', 300_000))
    assert.equal(await readFile(join(share, 'docs/new-notes.txt'), 'utf8'), 'not committed anywhere')
  })
})

describe('cli: a checkout cut short', () => {
  /** A folder at commit `first` whose checkout of `second` (twenty new files) stopped after five files. */
  async function cutShort(dir: string, force = false): Promise<{ first: string; second: string; two: Awaited<ReturnType<typeof describeTree>> }> {
    const share = join(dir, 'share')
    await writeFile(join(share, 'kept.txt'), 'committed')
    await writeFile(join(share, 'z-changed.txt'), 'the first version')
    const first = await commitOk(dir, ['-m', 'one'])
    // Written last, so the cut comes before it: finishing must replace HEAD's version there.
    await writeFile(join(share, 'z-changed.txt'), 'the second version, longer')
    await mkdir(join(share, 'new'))
    for (let i = 0; i < 20; i++) await writeFile(join(share, `new/f${i}.txt`), `file ${i} `.repeat(i + 1))
    const second = await commitOk(dir, ['-m', 'two'])
    const two = await describeTree(share, { mtimes: true })
    await leftOk(dir, ['checkout', first])
    // What a kill leaves: some of the files written, HEAD where it was.
    const repo = await Repo.open(dir)
    let written = 0
    await assert.rejects(repo.checkout(second, force, { onWrite: () => { if (++written === 5) throw new Error('cut') } }), /cut/)
    await repo.close()
    return { first, second, two }
  }

  it('blocks commits with one line until checking out the same commit finishes it: the rest is written, a torn file mended, and edits made since are kept', async () => {
    await inNewFolder(async (dir) => {
      const share = join(dir, 'share')
      const { first, second, two } = await cutShort(dir)
      const there = (await readdir(join(share, 'new'))).sort()
      assert.equal(await readFile(join(share, 'z-changed.txt'), 'utf8'), 'the first version', 'the cut came before it')
      assert.ok(there.length >= 5 && there.length < 20, `${there.length} files written before the cut`)
      // A power cut can leave a file renamed into place with its mtime as
      // written but not its bytes (zeros, or part of them), or empty.
      const tear = async (name: string, bytes: (size: number) => Buffer, keepMtime: boolean): Promise<void> => {
        const torn = join(share, 'new', name)
        const { size, mtimeMs } = await stat(torn)
        await writeFile(torn, bytes(size))
        if (keepMtime) await utimes(torn, (Math.floor(mtimeMs) + 0.5) / 1000, (Math.floor(mtimeMs) + 0.5) / 1000)
      }
      await tear(there[0]!, (size) => Buffer.alloc(size), true)
      await tear(there[2]!, () => Buffer.alloc(0), false)
      await tear(there[3]!, (size) => Buffer.from('x'.repeat(Math.floor(size / 2))), true)
      await writeFile(join(share, 'kept.txt'), 'an edit made after the cut')
      // Edits since the cut on the checkout's own paths: one it wrote, one it had not reached.
      const notYet = Array.from({ length: 20 }, (_, i) => `f${i}.txt`).find((n) => !there.includes(n))!
      await writeFile(join(share, 'new', there[1]!), 'edited after the cut')
      await writeFile(join(share, 'new', notYet), 'made by hand after the cut')
      const status = JSON.parse(await leftOk(dir, ['status', '--json']))
      assert.ok(second.startsWith(`bafyrei${status.unfinishedCheckout.id}`) && status.unfinishedCheckout.forced === false, JSON.stringify(status.unfinishedCheckout))
      assertOneLineError(await left(dir, ['commit']), new RegExp(`a checkout of ${second.slice(7, 15)}\\w* did not finish: run .left checkout`))
      assert.equal(JSON.parse(await leftOk(dir, ['log', '--json']))[0].id, first, 'nothing was committed')
      const finished = await left(dir, ['checkout', second.slice(0, 12)])
      assert.equal(finished.code, 0, finished.stderr)
      assert.match(finished.stdout, /^HEAD is now /)
      assert.match(finished.stderr, new RegExp(`kept new/${notYet} `))
      assert.match(finished.stderr, new RegExp(`kept new/${there[1]} `))
      assert.equal(finished.stderr.trim().split('\n').length, 2, finished.stderr)
      assert.equal(await readFile(join(share, 'kept.txt'), 'utf8'), 'an edit made after the cut')
      assert.equal(await readFile(join(share, 'new', there[1]!), 'utf8'), 'edited after the cut')
      assert.equal(await readFile(join(share, 'new', notYet), 'utf8'), 'made by hand after the cut')
      const edits = ['kept.txt', `new/${there[1]}`, `new/${notYet}`]
      const others = (tree: Awaited<ReturnType<typeof describeTree>>): typeof tree => tree.filter((e) => !edits.includes(e.path))
      assert.deepEqual(others(await describeTree(share, { mtimes: true })), others(two))
      assert.deepEqual((await statusChanges(dir)).split('\n').sort(), edits.map((p) => `M ${p}`).sort())
      assert.notEqual(await commitOk(dir), second)
    })
  })

  it('keeps the content of a forgotten commit it was checking out through gc, so it can still be finished', async () => {
    await inNewFolder(async (dir) => {
      const share = join(dir, 'share')
      const repo = await Repo.open(dir)
      try {
        const version = async (n: number): Promise<string> => {
          await writeFile(join(share, 'a.txt'), `a, version ${n}`)
          await writeFile(join(share, 'b.txt'), `b, version ${n}`)
          return (await repo.commit(`v${n}`))!.cid.toString()
        }
        await version(1)
        const two = await version(2)
        await version(3)
        // v1 and v2 are forgotten: their content goes at the next gc.
        assert.equal((await repo.forget({ keepLast: 1 })).forgotten.length, 2)
        await assert.rejects(repo.checkout(two, false, { onWrite: () => { throw new Error('cut') } }), /cut/)
        assert.equal(await readFile(join(share, 'b.txt'), 'utf8'), 'b, version 3', 'the cut came before b.txt')
        // Forgetting again keeps it too: it is about to be HEAD.
        assert.equal((await repo.forget({ keepLast: 1 })).forgotten.length, 0)
        await repo.gc()
        await repo.checkout(two)
        assert.equal(await readFile(join(share, 'b.txt'), 'utf8'), 'b, version 2')
      } finally {
        await repo.close()
      }
    })
  })

  it('a forced checkout cut short is finished only by a forced one', async () => {
    await inNewFolder(async (dir) => {
      const { second, two } = await cutShort(dir, true)
      assertOneLineError(await left(dir, ['commit']), /did not finish: run .left checkout --force /)
      assertOneLineError(await left(dir, ['checkout', second]), /uncommitted change/)
      await leftOk(dir, ['checkout', '--force', second])
      assert.deepEqual(await describeTree(join(dir, 'share'), { mtimes: true }), two)
      assert.equal(await statusChanges(dir), 'nothing to commit, share folder clean')
    })
  })

  it('ends with a forced checkout of any commit, and a plain checkout of another commit refuses as the folder is not clean', async () => {
    await inNewFolder(async (dir) => {
      const { first } = await cutShort(dir)
      assertOneLineError(await left(dir, ['checkout', first]), /uncommitted change/)
      await leftOk(dir, ['checkout', '--force', first])
      assert.deepEqual(await readdir(join(dir, 'share')), ['kept.txt', 'z-changed.txt'])
      assert.equal(await statusChanges(dir), 'nothing to commit, share folder clean')
      await writeFile(join(dir, 'share/kept.txt'), 'editable again')
      assert.notEqual(await commitOk(dir), first)
    })
  })
})

describe('cli: fsck and gc', () => {
  it('finds a clean store clean, reports a corrupt object, and gc removes unreachable objects', async () => {
    await inNewFolder(async (dir) => {
      await fillShare(join(dir, 'share'))
      await leftOk(dir, ['commit'])
      assert.match(await leftOk(dir, ['fsck']), /: ok$/)
      const orphan = Buffer.from('nobody links to me')
      const corrupted = Buffer.from('hello\n')
      const store = await Store.open(join(dir, '.left/store'))
      await store.putBlocks([{ cid: cidOf(RAW, orphan), bytes: orphan }])
      assert.ok(await store.has(cidOf(RAW, corrupted)))
      await store.putBlocks([{ cid: cidOf(RAW, corrupted), bytes: Buffer.from('HELLO\n') }])
      await store.close()
      const bad = await left(dir, ['fsck'])
      assert.equal(bad.code, 1)
      assert.match(bad.stdout, new RegExp(`corrupt ${cidOf(RAW, corrupted)}`))
      assert.match(await leftOk(dir, ['gc']), /removed 1 unreachable objects/)
      const again = await Store.open(join(dir, '.left/store'))
      assert.equal(await again.has(cidOf(RAW, orphan)), false)
      await again.close()
    })
  })
  it('reports an object the store lists but whose chunk data is gone as corrupt, not missing (issue 8 item 15)', async () => {
    await inNewFolder(async (dir) => {
      await writeFile(join(dir, 'share/data.bin'), seededBytes('lost', 200_000))
      await leftOk(dir, ['commit'])
      // Delete one chunk's bytes from the chunk database, behind the index's back.
      const index = new Level<Uint8Array, Uint8Array>(join(dir, '.left/store/index'), { keyEncoding: 'view', valueEncoding: 'view' })
      const objects = index.sublevel<Uint8Array, Uint8Array>('o', { keyEncoding: 'view', valueEncoding: 'view' })
      let lost: { cid: ReturnType<typeof cidOf>; seq: Uint8Array } | undefined
      for await (const [key, value] of objects.iterator()) {
        const cid = cidFromBytes(key)
        if (cid?.code === RAW && value.length === 8) lost = { cid, seq: value }
      }
      await index.close()
      assert.ok(lost !== undefined)
      const chunks = new Level<Uint8Array, Uint8Array>(join(dir, '.left/store/chunks'), { keyEncoding: 'view', valueEncoding: 'view' })
      await chunks.sublevel<Uint8Array, Uint8Array>('d', { keyEncoding: 'view', valueEncoding: 'view' }).del(lost.seq)
      await chunks.close()
      const report = JSON.parse((await left(dir, ['fsck', '--json'])).stdout)
      assert.deepEqual([report.missing, report.corrupt], [[], [lost.cid.toString()]])
    })
  })
})

describe('cli: a damaged store', () => {
  it('refuses a store whose LevelDB CURRENT files are gone with one line and exit 3, and has its full history once they are back', async () => {
    await inNewFolder(async (dir) => {
      await writeFile(join(dir, 'share/a.txt'), 'one')
      await leftOk(dir, ['commit', '-m', 'one'])
      await writeFile(join(dir, 'share/a.txt'), 'two')
      await leftOk(dir, ['commit', '-m', 'two'])
      const history = await leftOk(dir, ['log', '--json'])
      for (const db of ['index', 'chunks']) await rename(join(dir, '.left/store', db, 'CURRENT'), join(dir, `CURRENT-${db}`))
      for (const args of [['log'], ['status'], ['commit', '-m', 'three'], ['restore', 'a.txt']]) {
        const r = await left(dir, args)
        assertOneLineError(r, /the store database .*\/\.left\/store\/index is missing or damaged \(no CURRENT file\); nothing was changed/)
        assert.equal(r.code, 3, `left ${args.join(' ')}`)
      }
      for (const db of ['index', 'chunks']) await rename(join(dir, `CURRENT-${db}`), join(dir, '.left/store', db, 'CURRENT'))
      assert.equal(await leftOk(dir, ['log', '--json']), history)
      assert.match(await leftOk(dir, ['fsck']), /: ok$/)
      assert.equal(await readFile(join(dir, 'share/a.txt'), 'utf8'), 'two')
    })
  })

  it('refuses a store of object format 1 with one line and exit 3, and changes nothing', async () => {
    await inNewFolder(async (dir) => {
      await writeFile(join(dir, 'share/a.txt'), 'one')
      await leftOk(dir, ['commit', '-m', 'one'])
      const history = await leftOk(dir, ['log', '--json'])
      // A store from before the format mark: objects, and no mark.
      const setMark = async (mark: string | undefined): Promise<void> => {
        const db = new Level<Buffer, Buffer>(join(dir, '.left/store/index'), { keyEncoding: 'buffer', valueEncoding: 'buffer' })
        const meta = db.sublevel<Buffer, Buffer>('m', { keyEncoding: 'buffer', valueEncoding: 'buffer' })
        if (mark === undefined) await meta.del(Buffer.from('format'))
        else await meta.put(Buffer.from('format'), Buffer.from(mark))
        await db.close()
      }
      await setMark(undefined)
      for (const args of [['log'], ['commit', '-m', 'two'], ['sync', '127.0.0.1:1']]) {
        const r = await left(dir, args)
        assertOneLineError(r, /the store .*\/\.left\/store holds object format 1, this left reads format 2; nothing was changed/)
        assert.equal(r.code, 3, `left ${args.join(' ')}`)
      }
      await setMark('2')
      assert.equal(await leftOk(dir, ['log', '--json']), history)
    })
  })
})

describe('cli: a hand-edited config', () => {
  it('is checked again on every open: a share that holds .left/, or is a file, is refused before anything is read', async () => {
    await inNewFolder(async (dir) => {
      await writeFile(join(dir, 'share/a.txt'), 'a')
      await leftOk(dir, ['commit', '-m', 'one'])
      const path = join(dir, '.left/config')
      const original = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
      const edit = (patch: Record<string, unknown>): Promise<void> => writeFile(path, JSON.stringify({ ...original, ...patch }))
      for (const share of ['.', 'share/..', dir]) {
        await edit({ share })
        assertOneLineError(await left(dir, ['commit', '-m', 'the key in history']), /cannot be the LEFT folder itself/)
      }
      await edit({ share: '.left/store' })
      assertOneLineError(await left(dir, ['status']), /cannot be the LEFT folder itself or inside \.left\//)
      await writeFile(join(dir, 'a-file'), 'x')
      await edit({ share: 'a-file' })
      assertOneLineError(await left(dir, ['status']), /the share folder .*a-file is not a directory/)
      await edit({ key: 'short' })
      assertOneLineError(await left(dir, ['log']), /folder key must be/)
      await edit({})
      assert.deepEqual((JSON.parse(await leftOk(dir, ['log', '--json'])) as { message: string }[]).map((e) => e.message), ['one'])
    })
  })
})

describe('cli: terminal injection', () => {
  it('prints names and messages with control characters escaped, never raw', async () => {
    await inNewFolder(async (dir) => {
      const evil = 'report\u202Efdp.exe'
      await writeFile(join(dir, 'share', evil), 'x')
      await writeFile(join(dir, 'share', 'title\x1b]0;owned\x07'), 'y')
      const status = await leftOk(dir, ['status'])
      assert.match(status, /^A "report\\u\{202e\}fdp\.exe"$/m)
      assert.match(status, /^A "title\\e\]0;owned\\x07"$/m)
      await leftOk(dir, ['commit', '-m', 'first line\n\x1b[2Jsecond line'])
      const log = await leftOk(dir, ['log'])
      assert.match(log, /^ {4}\\e\[2Jsecond line$/m)
      for (const out of [status, log, await leftOk(dir, ['diff', 'HEAD'])]) {
        assert.doesNotMatch(out, /[\x00-\x09\x0b-\x1f\x7f\u202e]/)
      }
      // JSON keeps names and messages exactly, escaped the JSON way.
      const changes = (JSON.parse(await leftOk(dir, ['log', '--json'])) as { message: string }[])[0]!.message
      assert.equal(changes, 'first line\n\x1b[2Jsecond line')
    })
  })
})

describe('cli: big files and crashes', () => {
  it('commits and checks out a file of several hundred MB', async () => {
    await inNewFolder(async (dir) => {
      const big = join(dir, 'share/big.bin')
      const fh = await open(big, 'w')
      const block = seededBytes('big', 8 << 20)
      for (let i = 0; i < 40; i++) { block[0] = i; await fh.write(block) }
      await fh.close()
      const before = await describeTree(join(dir, 'share'))
      const first = await commitOk(dir)
      await writeFile(big, 'small now')
      await leftOk(dir, ['commit'])
      await leftOk(dir, ['checkout', first])
      assert.deepEqual(await describeTree(join(dir, 'share')), before)
      assert.match(await leftOk(dir, ['fsck']), /: ok$/)
    })
  })

  it('survives kill -9 in the middle of a commit: fsck is clean and the next commit works', async () => {
    await inNewFolder(async (dir) => {
      await writeFile(join(dir, 'share/a.txt'), 'a')
      const first = await commitOk(dir)
      const fh = await open(join(dir, 'share/big.bin'), 'w')
      const block = seededBytes('crash', 8 << 20)
      for (let i = 0; i < 48; i++) { block[0] = i; await fh.write(block) }
      await fh.close()
      const child = spawn(process.execPath, [LEFT_BIN, 'commit'], { cwd: dir, stdio: 'ignore' })
      const closed = new Promise((r) => child.once('close', r))
      // Kill once the store has visibly grown: the commit is mid-flight.
      const storeDir = join(dir, '.left/store')
      const sizeOf = () => dirSize(storeDir)
      const start = await sizeOf()
      while ((await sizeOf()) < start + (1 << 20) && child.exitCode === null) await new Promise((r) => setTimeout(r, 5))
      const killedMidway = child.exitCode === null
      child.kill('SIGKILL')
      await closed
      assert.ok(killedMidway, 'the commit finished before it could be killed')
      const log = JSON.parse(await leftOk(dir, ['log', '--json']))
      assert.equal(log[0].id, first, 'HEAD did not move')
      assert.match(await leftOk(dir, ['fsck']), /: ok$/)
      const second = await commitOk(dir)
      assert.notEqual(second, first)
      assert.match(await leftOk(dir, ['fsck']), /: ok$/)
    })
  })

  it('item 14: skips what cannot be read with one warning each, commits the rest, and keeps the committed versions', { skip: process.getuid?.() === undefined }, async () => {
    await inNewFolder(async (dir) => {
      const share = join(dir, 'share')
      await mkdir(join(share, 'sealed'))
      await writeFile(join(share, 'sealed/inside.txt'), 'committed inside')
      await writeFile(join(share, 'locked.txt'), 'committed')
      await leftOk(dir, ['commit'])
      await writeFile(join(share, 'locked.txt'), 'edited, then locked away')
      await writeFile(join(share, 'new-locked.txt'), 'never readable')
      await writeFile(join(share, 'ok.txt'), 'ok')
      // Root reads anything, so run the CLI as an unprivileged user when we are root.
      if (process.getuid!() === 0) await chmodTree(dir)
      for (const f of ['locked.txt', 'new-locked.txt']) await chmod(join(share, f), 0o000)
      await chmod(join(share, 'sealed'), 0o000)
      const r = await leftAsUser(dir, ['commit'])
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(r.stderr.trim().split('\n').sort(), [
        'left: skipped locked.txt: cannot be read (EACCES)',
        'left: skipped new-locked.txt: cannot be read (EACCES)',
        'left: skipped sealed: cannot be read (EACCES)'
      ])
      await chmod(join(share, 'sealed'), 0o777)
      // Nothing that could not be read reads as deleted: only ok.txt is new.
      assert.equal(await leftOk(dir, ['diff', 'HEAD~1', 'HEAD']), 'A ok.txt')
      assert.equal(await leftOk(dir, ['log', '-n', '1', '--json']).then((t) => JSON.parse(t)[0].added), 1)
    })
  })
})

/** Runs `left` as an unprivileged user when the tests run as root (root reads anything). */
function leftAsUser(cwd: string, args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  const asUser = process.getuid!() === 0 ? { uid: 65534, gid: 65534 } : {}
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [LEFT_BIN, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'], ...asUser })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('close', (code) => resolve({ code, stderr }))
  })
}

/** Opens a test tree to everyone (but the locked file), so an unprivileged user can run left in it. */
async function chmodTree(root: string): Promise<void> {
  await chmod(root, 0o777)
  for (const name of await readdir(root, { recursive: true })) {
    const p = join(root, name)
    const st = await stat(p)
    await chmod(p, st.isDirectory() ? 0o777 : 0o666)
  }
}
