import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { conflictName } from '../../src/history/conflict-name.js'
import { assertOneLineError, commitOk, left, leftOk, tempDir } from '../helpers/cli.js'

const COPY = 'notes.sync-conflict-laptop-20261129-101010.txt'

describe('cli: ls, conflicts and resolve (issue 11)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => {
    ;({ dir, cleanup } = await tempDir())
    await leftOk(dir, ['init'])
  })
  after(async () => {
    await cleanup()
  })

  it('ls lists a folder of a commit, as text and as JSON', async () => {
    assert.equal(await leftOk(dir, ['ls']), '')
    await mkdir(join(dir, 'share', 'sub'))
    await writeFile(join(dir, 'share', 'sub', 'a.txt'), 'aaa')
    await writeFile(join(dir, 'share', 'top.txt'), 'top')
    await commitOk(dir, ['-m', 'two files'])
    const text = await leftOk(dir, ['ls'])
    assert.match(text, /^d\s+-\s+sub\/$/m)
    assert.match(text, /^f\s+3 B\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\s+top\.txt$/m)
    const json = JSON.parse(await leftOk(join(dir, 'share'), ['ls', 'sub', '--json'])) as Array<Record<string, unknown>>
    assert.deepEqual(json.map((e) => [e['name'], e['path'], e['kind'], e['size']]), [['a.txt', 'sub/a.txt', 'file', 3]])
    await writeFile(join(dir, 'share', 'top.txt'), 'changed')
    await commitOk(dir, ['-m', 'change'])
    const old = JSON.parse(await leftOk(dir, ['ls', '--json', '-s', 'HEAD~1'])) as Array<Record<string, unknown>>
    assert.equal(old.find((e) => e['name'] === 'top.txt')?.['size'], 3)
    assertOneLineError(await left(dir, ['ls', 'missing']), /^left: no such path in HEAD: missing$/)
    assertOneLineError(await left(dir, ['ls', 'top.txt']), /^left: no such path in HEAD: top\.txt$/)
  })

  it('conflicts lists each copy beside the version it competes with; resolve keeps one, and refuses over an edit', async () => {
    assert.equal(await leftOk(dir, ['conflicts']), 'no conflict copies')
    await writeFile(join(dir, 'share', 'notes.txt'), 'this')
    await writeFile(join(dir, 'share', COPY), 'that one')
    await commitOk(dir, ['-m', 'a conflict'])
    const listed = JSON.parse(await leftOk(dir, ['conflicts', '--json'])) as Array<Record<string, unknown>>
    assert.equal(listed.length, 1)
    assert.deepEqual({ ...listed[0], this: (listed[0]!['this'] as { size: number }).size, that: (listed[0]!['that'] as { size: number }).size },
      { path: 'notes.txt', copy: COPY, peer: 'laptop', time: '2026-11-29T10:10:10.000Z', this: 4, that: 8 })
    assert.match(await leftOk(dir, ['conflicts']), /^notes\.txt\n {2}this: 4 B, .*\n {2}that: 8 B, .*, by laptop {2}notes\.sync-conflict-laptop-20261129-101010\.txt$/)

    // An edit to either version since the commit: nothing changes.
    await writeFile(join(dir, 'share', 'notes.txt'), 'edited!')
    assertOneLineError(await left(dir, ['resolve', COPY, '--keep', 'that']), /LEFT_DIRTY_WORKTREE|uncommitted change\(s\) \(notes\.txt\)/)
    assert.equal(await readFile(join(dir, 'share', COPY), 'utf8'), 'that one')
    await writeFile(join(dir, 'share', 'notes.txt'), 'this')

    const r = await left(join(dir, 'share'), ['resolve', COPY, '--keep', 'that'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.trim(), `kept ${COPY} as notes.txt`)
    assert.equal(await readFile(join(dir, 'share', 'notes.txt'), 'utf8'), 'that one')
    await assert.rejects(readFile(join(dir, 'share', COPY)))
    await commitOk(dir, ['-m', 'resolved'])
    assert.equal(await leftOk(dir, ['conflicts']), 'no conflict copies')

    await writeFile(join(dir, 'share', COPY), 'again')
    await commitOk(dir)
    assert.equal(await leftOk(dir, ['resolve', `share/${COPY}`, '--keep', 'this']), `kept notes.txt; deleted ${COPY}`)
    assert.equal(await readFile(join(dir, 'share', 'notes.txt'), 'utf8'), 'that one')
    await assert.rejects(readFile(join(dir, 'share', COPY)))

    // A name so long that its copy's name was cut to fit: the original is found beside it.
    const long = `${'n'.repeat(240)}.txt`
    const cut = conflictName(long, 'laptop', Date.UTC(2026, 10, 29, 10, 10, 10))
    assert.ok(!cut.startsWith(long.slice(0, -4)), 'the copy name was not cut')
    await writeFile(join(dir, 'share', long), 'long this')
    await writeFile(join(dir, 'share', cut), 'long that')
    await commitOk(dir)
    const both = JSON.parse(await leftOk(dir, ['conflicts', '--json'])) as Array<{ path: string; copy: string }>
    assert.deepEqual(both.map((c) => [c.path, c.copy]), [[long, cut]])
    await leftOk(dir, ['resolve', cut, '--keep', 'that'])
    assert.equal(await readFile(join(dir, 'share', long), 'utf8'), 'long that')

    assertOneLineError(await left(dir, ['resolve', 'notes.txt', '--keep', 'this']), /^left: no such path in HEAD as a conflict copy: notes\.txt$/)
    const usage = await left(dir, ['resolve', COPY, '--keep', 'both'])
    assert.equal(usage.code, 2)
    assertOneLineError(usage, /--keep must be "this" or "that"/)
  })

  it('reads a word after -- as a path, never as an option (as the status page sends them)', async () => {
    assert.equal(await leftOk(dir, ['versions', '--json', '--', '--force']), '[]')
    assertOneLineError(await left(dir, ['ls', '--json', '--', '-s']), /^left: no such path in HEAD: -s$/)
    assertOneLineError(await left(dir, ['restore', '-s', 'HEAD', '--', '-f']), /^left: no such path in HEAD: -f$/)
    assertOneLineError(await left(dir, ['resolve', '--keep', 'this', '--', '--keep']), /^left: no such path in HEAD as a conflict copy: --keep$/)
  })
})
