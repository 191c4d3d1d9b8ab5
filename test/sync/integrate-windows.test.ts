import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { storeOf } from '../../src/repo/repo.js'
import { APPLY_WINDOW } from '../../src/worktree/materialize.js'
import { suiteRepos } from './fixtures.js'

/** More files than one window holds, so every apply below takes several. */
const FILES = APPLY_WINDOW + 700

async function fill(dir: string, tag: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  for (let i = 0; i < FILES; i++) await writeFile(join(dir, `f-${String(i).padStart(5, '0')}`), `${tag} ${i}\n`)
}

describe('repo/integrate: a diff bigger than one window', () => {
  const suite = suiteRepos('left-windows-')

  it('applies a first sync and a directory replaced by a file a window at a time, ending exactly at the remote', async () => {
    const source = await suite.repo('source')
    const dest = await suite.repo('dest')
    await fill(join(source.share, 'big'), 'big')
    await writeFile(join(source.share, 'keep.txt'), 'kept\n')
    const v1 = (await source.commit('v1'))!

    const first = await suite.bring(source, dest, v1.cid)
    assert.equal(first.mode, 'fast-forward')
    assert.equal(first.written, FILES + 1)
    assert.equal((await readdir(join(dest.share, 'big'))).length, FILES)
    // Every window's stat entries were kept, not only the last one's.
    for (const path of ['big/f-00000', `big/f-${String(FILES - 1).padStart(5, '0')}`, 'keep.txt']) {
      const entry = await storeOf(dest).statEntry(path)
      assert.ok(entry !== undefined, `${path} has a stat entry`)
      assert.equal(entry.size, (await stat(join(dest.share, path))).size)
    }
    assert.deepEqual(await dest.status(), [])

    // The directory's removal spans more than a window: it must go whole
    // before the file takes its name.
    await rm(join(source.share, 'big'), { recursive: true })
    await writeFile(join(source.share, 'big'), 'a file now\n')
    await fill(join(source.share, 'more'), 'more')
    const v2 = (await source.commit('v2'))!
    const second = await suite.bring(source, dest, v2.cid)
    assert.equal(second.mode, 'fast-forward')
    assert.deepEqual(second.skipped, [])
    assert.equal(second.deleted.length, FILES)
    assert.equal((await dest.head())?.toString(), v2.cid.toString())
    assert.equal(await readFile(join(dest.share, 'big'), 'utf8'), 'a file now\n')
    assert.equal((await readdir(join(dest.share, 'more'))).length, FILES)
    assert.equal(await readFile(join(dest.share, 'more', 'f-04000'), 'utf8'), 'more 4000\n')
    assert.deepEqual(await dest.status(), [])
  })
})
