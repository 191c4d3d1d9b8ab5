/**
 * Issue 10: forget by policy, then gc returns the space; history stays.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { assertOneLineError, commitOk, inNewFolder, left, leftOk } from '../helpers/cli.js'
import { seededBytes } from '../helpers/data.js'
import { dirSize, spawnLeft } from '../helpers/peers.js'

const MiB = 1024 * 1024

interface Stats { commits: number; thinCommits: number; versionsBytes: number; referencedBytes: number; keptBytes: number; storeBytes: number; dedupRatio: number }

describe('cli: left forget, left gc and left stats', () => {
  it('frees the content of a deleted 24 MiB file after forget --keep-last 1 and gc, and keeps every commit in the log', () => inNewFolder(async (dir) => {
    const share = join(dir, 'share')
    const big = seededBytes('big', 24 * MiB)
    await writeFile(join(share, 'keep.txt'), 'stays\n')
    await writeFile(join(share, 'big.bin'), big)
    const first = await commitOk(dir, ['-m', 'big'])
    await rm(join(share, 'big.bin'))
    const second = await commitOk(dir, ['-m', 'delete big'])
    const before = JSON.parse(await leftOk(dir, ['stats', '--json'])) as Stats
    assert.deepEqual([before.commits, before.thinCommits, before.keptBytes], [2, 0, before.referencedBytes])
    assert.equal(before.referencedBytes, 24 * MiB + 6)
    assert.equal(before.versionsBytes, 24 * MiB + 12)

    // A dry run says what it would do and changes nothing.
    assert.match(await leftOk(dir, ['forget', '--keep-last', '1', '--dry-run']), /would forget the content of 1 commit, kept 1/)
    assert.equal((JSON.parse(await leftOk(dir, ['stats', '--json'])) as Stats).thinCommits, 0)

    const sizeBefore = await dirSize(join(dir, '.left'))
    const forgot = JSON.parse(await leftOk(dir, ['forget', '--keep-last', '1', '--json'])) as { kept: Array<{ id: string; time: number; reasons: string[] }>; forgotten: string[] }
    assert.deepEqual(forgot.forgotten, [first])
    assert.deepEqual(forgot.kept, [{ id: second, time: forgot.kept[0]!.time, reasons: ['last', 'HEAD'] }])
    await leftOk(dir, ['gc'])
    const sizeAfter = await dirSize(join(dir, '.left'))
    assert.ok(sizeBefore - sizeAfter > 16 * MiB, `.left/ went from ${sizeBefore} to ${sizeAfter} bytes`)

    const log = JSON.parse(await leftOk(dir, ['log', '--json'])) as Array<{ id: string }>
    assert.deepEqual(log.map((e) => e.id), [second, first])
    const after = JSON.parse(await leftOk(dir, ['stats', '--json'])) as Stats
    assert.deepEqual([after.commits, after.thinCommits, after.keptBytes, after.referencedBytes], [2, 1, 6, 24 * MiB + 6])
    const fsck = await leftOk(dir, ['fsck'])
    assert.match(fsck, /^\d+ chunks \(24\.0 MiB\) of old versions not here: never fetched, or forgotten/m)
    assert.match(fsck, /: ok$/)
    // What is kept is whole: the file the kept commit shares with the forgotten one is still there.
    await rm(join(share, 'keep.txt'))
    await leftOk(dir, ['restore', 'keep.txt'])
    assert.equal(await readFile(join(share, 'keep.txt'), 'utf8'), 'stays\n')
    // And what is gone says so in one line.
    assertOneLineError(await left(dir, ['restore', '-s', first, 'big.bin']), /content of big\.bin is not here \(never fetched, or forgotten\)/)
  }))

  it('always keeps the content of HEAD, even when the policy keeps only older commits', () => inNewFolder(async (dir) => {
    const share = join(dir, 'share')
    await writeFile(join(share, 'a.txt'), 'one')
    await commitOk(dir)
    await writeFile(join(share, 'a.txt'), 'two')
    const head = await commitOk(dir)
    // Check out the first: HEAD is now older than the newest commit.
    const log = JSON.parse(await leftOk(dir, ['log', '--json'])) as Array<{ id: string }>
    await leftOk(dir, ['checkout', log[1]!.id])
    const forgot = JSON.parse(await leftOk(dir, ['forget', '--keep-last', '1', '--json'])) as { kept: Array<{ id: string }>; forgotten: string[] }
    assert.deepEqual(forgot.kept.map((k) => k.id).sort(), [head, log[1]!.id].sort())
    assert.deepEqual(forgot.forgotten, [])
  }))

  it('left watch applies the policy remembered in .left/config by itself, and says so', () => inNewFolder(async (dir) => {
    const share = join(dir, 'share')
    for (const v of ['one', 'two', 'three']) {
      await writeFile(join(share, 'a.txt'), v)
      await commitOk(dir)
    }
    // As a user would write it by hand; `left forget --remember` writes the same.
    const configPath = join(dir, '.left/config')
    const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>
    await writeFile(configPath, JSON.stringify({ ...config, retention: { keepLast: 1 } }))
    const daemon = spawnLeft(dir, ['watch', '--listen', '127.0.0.1:0'])
    try {
      await daemon.waitFor(/retention policy: forgot the content of 2 old commits \(their history stays\); removed 2 objects/)
      const stats = JSON.parse(await leftOk(dir, ['stats', '--json'])) as Stats
      assert.deepEqual([stats.commits, stats.thinCommits, stats.keptBytes], [3, 2, 5])
    } finally {
      await daemon.kill('SIGTERM')
    }
    // A broken policy is a config error, in one line.
    await writeFile(configPath, JSON.stringify({ ...config, retention: { keepLast: 0 } }))
    assertOneLineError(await left(dir, ['stats']), /config: retention: keepLast must be a whole number/)
  }))

  it('left forget --remember saves the policy', () => inNewFolder(async (dir) => {
    await writeFile(join(dir, 'share/a.txt'), 'x')
    await commitOk(dir)
    assert.match(await leftOk(dir, ['forget', '--keep-daily', '7', '--keep-within', '30d', '--remember']), /saved the policy/)
    const config = JSON.parse(await readFile(join(dir, '.left/config'), 'utf8')) as { retention?: unknown }
    assert.deepEqual(config.retention, { keepDaily: 7, keepWithin: '30d' })
  }))

  it('checkout --force of a forgotten version keeps the content of a matching file in the folder, so HEAD is whole', () => inNewFolder(async (dir) => {
    const share = join(dir, 'share')
    const aside = join(dir, 'aside.bin')
    await writeFile(join(share, 'big.bin'), seededBytes('matching', 3 * MiB))
    const first = await commitOk(dir, ['-m', 'big'])
    // Moved out and back, so it matches the first commit's entry to the millisecond.
    await rename(join(share, 'big.bin'), aside)
    await commitOk(dir, ['-m', 'gone'])
    await leftOk(dir, ['forget', '--keep-last', '1', '--prune'])
    await rename(aside, join(share, 'big.bin'))
    await leftOk(dir, ['checkout', '--force', first])
    assert.match(await leftOk(dir, ['fsck']), /: ok$/)
    assert.doesNotMatch(await leftOk(dir, ['fsck']), /not here/)
  }))

  it('does not remember a policy it refuses', () => inNewFolder(async (dir) => {
    assertOneLineError(await left(dir, ['forget', '--keep-within', '3x', '--remember']), /not a duration/)
    const config = JSON.parse(await readFile(join(dir, '.left/config'), 'utf8')) as { retention?: unknown }
    assert.equal(config.retention, undefined)
    await leftOk(dir, ['status'])
  }))

  it('refuses a missing or malformed policy in one line', () => inNewFolder(async (dir) => {
    assertOneLineError(await left(dir, ['forget']), /needs at least one rule/)
    assertOneLineError(await left(dir, ['forget', '--keep-last', '0']), /--keep-last needs a whole number of at least 1/)
    assertOneLineError(await left(dir, ['forget', '--keep-within', '3 days']), /not a duration/)
  }))
})
