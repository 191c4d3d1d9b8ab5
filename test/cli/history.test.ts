import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { assertOneLineError, commitOk, left, leftOk, tempDir } from '../helpers/cli.js'

/** Issue 10, navigation: what a git user expects from init, log, reflog, ids and paths. */
describe('cli: finding a version (issue 10)', () => {
  let root: string
  let cleanup: () => Promise<void>
  let dir: string
  let share: string
  const ids: Record<string, string> = {}
  before(async () => {
    ;({ dir: root, cleanup } = await tempDir('left-history-'))
    dir = join(root, 'N')
    share = join(dir, 'share')
  })
  after(() => cleanup())

  it('left init DIR makes the directory and the folder in it', async () => {
    assert.match(await leftOk(root, ['init', 'N']), /initialized LEFT folder in .*N/)
    assert.ok((await stat(join(dir, '.left'))).isDirectory() && (await stat(share)).isDirectory())
    assertOneLineError(await left(root, ['init', 'N']), /already/)
  })

  it('commit prints [short id] message (counts), and automatic messages name the files', async () => {
    await mkdir(join(share, 'sub'))
    await writeFile(join(share, 'sub/q.txt'), 'q one')
    await writeFile(join(share, 'notes.txt'), 'notes')
    const out = await leftOk(dir, ['commit'])
    assert.match(out, /^\[([a-z2-7]{8,})\] add notes\.txt and sub\/q\.txt \(2 added, 0 modified, 0 deleted\)$/)
    ids.first = (await leftOk(dir, ['log', '-n', '1', '--json']).then(JSON.parse))[0].id
    assert.ok(ids.first!.startsWith('bafyrei') && ids.first!.slice(7).startsWith(/^\[(\w+)\]/.exec(out)![1]!), 'the short id is the part after bafyrei')
    await writeFile(join(share, 'sub/q.txt'), 'q two')
    ids.editQ = await commitOk(dir)
    await writeFile(join(share, 'notes.txt'), 'notes two')
    ids.editNotes = await commitOk(dir, ['-m', 'notes by hand'])
    assert.equal((await leftOk(dir, ['log', '-n', '1', '--json']).then(JSON.parse))[0].message, 'notes by hand')
    assert.equal((await leftOk(dir, ['log', '-n', '1', '--json', 'HEAD~1']).then(JSON.parse))[0].message, 'update sub/q.txt')
  })

  it('log --oneline prints one line per commit, with a short id that every command accepts', async () => {
    const lines = (await leftOk(dir, ['log', '--oneline'])).split('\n')
    assert.deepEqual(lines.map((l) => l.split(' ').slice(1).join(' ')), ['notes by hand', 'update sub/q.txt', 'add notes.txt and sub/q.txt'])
    const short = lines.map((l) => l.split(' ')[0]!)
    for (const s of short) assert.ok(s.length >= 8 && s.length <= 16 && !s.startsWith('bafy'), s)
    assert.equal(await leftOk(dir, ['diff', short[1]!, short[0]!]), 'M notes.txt')
    assert.equal(await leftOk(dir, ['diff', short[2]!.slice(0, 6), short[1]!]), 'M sub/q.txt', 'any unique abbreviation of 4 or more works')
    assert.equal((await leftOk(dir, ['log', '--oneline', '--full-id', '-n', '1'])).split(' ')[0], ids.editNotes)
  })

  it('log -- PATH lists exactly the commits that touched it; a bare path works when it is not a commit', async () => {
    const touching = async (args: string[], cwd = dir): Promise<string[]> => (await leftOk(cwd, ['log', '--json', ...args]).then(JSON.parse)).map((e: { id: string }) => e.id)
    assert.deepEqual(await touching(['--', 'sub/q.txt']), [ids.editQ, ids.first])
    assert.deepEqual(await touching(['notes.txt']), [ids.editNotes, ids.first])
    assert.deepEqual(await touching(['HEAD~1', '--', 'notes.txt']), [ids.first])
    assert.deepEqual(await touching(['q.txt'], join(share, 'sub')), [ids.editQ, ids.first], 'relative to where you stand')
    assert.deepEqual(await touching(['share/sub']), [ids.editQ, ids.first], 'from the folder root, with share/')
    assertOneLineError(await left(dir, ['log', 'nosuchthing']), /unknown commit or path: nosuchthing \(put -- before/)
    assert.equal(await leftOk(dir, ['log', '--', 'gone.txt']), '')
  })

  it('log --stat and --name-status list what each commit changed', async () => {
    assert.equal(await leftOk(dir, ['log', '--oneline', '--name-status', '-n', '2']), `${(await leftOk(dir, ['log', '--oneline', '-n', '1']))}\nM notes.txt\n\n${(await leftOk(dir, ['log', '--oneline', '-n', '1', 'HEAD~1']))}\nM sub/q.txt`)
    const stat = await leftOk(dir, ['log', '--stat', '-n', '1'])
    assert.match(stat, /\n notes\.txt \| 5 B -> 9 B\n 1 file changed$/)
  })

  it('restore takes paths relative to where you stand, or from the folder root with share/', async () => {
    await writeFile(join(share, 'sub/q.txt'), 'broken')
    assert.match(await leftOk(join(share, 'sub'), ['restore', 'q.txt']), /^restored q\.txt from HEAD$/)
    assert.equal(await readFile(join(share, 'sub/q.txt'), 'utf8'), 'q two')
    await leftOk(dir, ['restore', 'share/sub/q.txt', '--source', ids.first!.slice(7, 17)])
    assert.equal(await readFile(join(share, 'sub/q.txt'), 'utf8'), 'q one')
    await leftOk(join(share, 'sub'), ['restore', '.'])
    assert.equal(await readFile(join(share, 'sub/q.txt'), 'utf8'), 'q two')
    assertOneLineError(await left(join(share, 'sub'), ['restore', '../../.left/config']), /outside the share folder/)
    await writeFile(join(share, 'sub/q.txt'), 'edited')
    assert.match(await leftOk(join(share, 'sub'), ['status', '.']), /\n\nM sub\/q\.txt$/)
    assert.match(await leftOk(dir, ['status', 'notes.txt']), /\n\nnothing to commit, share folder clean$/)
    await leftOk(dir, ['restore', 'sub/q.txt'])
  })

  it('versions lists every version of a file, newest first, with a restore command that works', async () => {
    const lines = (await leftOk(join(share, 'sub'), ['versions', 'q.txt'])).split('\n')
    assert.equal(lines.length, 2)
    assert.match(lines[0]!, /^[a-z2-7]{8,} {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC {2}5 B +by \w+ {2}left restore q\.txt --source ([a-z2-7]{8,})$/)
    const oldest = / --source (\S+)$/.exec(lines[1]!)![1]!
    await leftOk(join(share, 'sub'), ['restore', 'q.txt', '--source', oldest])
    assert.equal(await readFile(join(share, 'sub/q.txt'), 'utf8'), 'q one')
    await leftOk(dir, ['restore', 'sub/q.txt'])
    const json = await leftOk(dir, ['versions', '--json', 'notes.txt']).then(JSON.parse)
    assert.deepEqual(json.map((v: { id: string; size: number }) => [v.id, v.size]), [[ids.editNotes, 9], [ids.first, 5]])
    assertOneLineError(await left(dir, ['versions', 'never.txt']), /no such path in history: never\.txt/)
  })

  it('reflog and --all keep every commit in reach after a checkout of an old one', async () => {
    assert.match(await leftOk(dir, ['checkout', 'HEAD~2']), /^HEAD is now [a-z2-7]{8,} \(/)
    assert.deepEqual((await leftOk(dir, ['log', '--oneline'])).split('\n').length, 1)
    const all = (await leftOk(dir, ['log', '--all', '--json']).then(JSON.parse)).map((e: { id: string }) => e.id)
    assert.deepEqual(all, [ids.editNotes, ids.editQ, ids.first])
    const reflog = (await leftOk(dir, ['reflog'])).split('\n')
    assert.deepEqual(reflog.map((l) => l.split(' ')[1]), ['HEAD@{0}', 'HEAD@{1}', 'HEAD@{2}', 'HEAD@{3}'])
    assert.match(reflog[1]!, /HEAD@\{1\} .* notes by hand$/)
    await leftOk(dir, ['checkout', 'HEAD@{1}'])
    assert.equal((await leftOk(dir, ['log', '--json', '-n', '1']).then(JSON.parse))[0].id, ids.editNotes)
    assert.equal(await readFile(join(share, 'notes.txt'), 'utf8'), 'notes two')
  })

  it('scripts: each kind of failure has its exit code, and --json puts the error on stdout as JSON', async () => {
    const { dir: elsewhere, cleanup: done } = await tempDir('left-not-a-folder-')
    try {
      const cases: Array<[string, string[], number, string]> = [
        [elsewhere, ['log', '--json'], 4, 'LEFT_NOT_A_REPO'],
        [dir, ['log', '--json', '--bogus'], 2, 'LEFT_USAGE'],
        [dir, ['diff', '--json', 'nosuchthing'], 1, 'LEFT_UNKNOWN_REVISION']
      ]
      for (const [cwd, args, code, name] of cases) {
        const r = await left(cwd, args)
        assertOneLineError(r, /^left: /)
        assert.equal(r.code, code, args.join(' '))
        assert.equal(JSON.parse(r.stdout).error.code, name)
      }
      const plain = await left(elsewhere, ['log'])
      assert.equal(plain.stdout, '', 'without --json, stdout stays empty')
      assert.equal(plain.code, 4)
    } finally {
      await done()
    }
  })

  it('reports an ambiguous abbreviation, and refuses one shorter than 4', async () => {
    assertOneLineError(await left(dir, ['diff', 'bafyrei']), /ambiguous commit prefix/)
    assertOneLineError(await left(dir, ['checkout', ids.first!.slice(7, 10)]), /unknown commit/)
    await rm(join(share, 'notes.txt'))
    assertOneLineError(await left(dir, ['log', 'notes.txt']), /unknown commit or path/)
    assert.equal((await leftOk(dir, ['log', '--json', '--', 'notes.txt']).then(JSON.parse)).length, 2, 'a path gone from the folder works after --')
  })
})
