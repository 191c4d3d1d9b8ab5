import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, renameSync } from 'node:fs'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { suiteRepos } from '../sync/fixtures.js'

/**
 * A share folder moved away with another made at its path (or a disk
 * unmounted under its mount point) must not be read as every file deleted:
 * that commit would delete them on every peer.
 */
describe('repo: the share folder replaced while the repo is open', () => {
  const { repo, bring } = suiteRepos('left-share-identity-')

  it('commits nothing, syncs nothing in, and shows no status until the folder is back', async () => {
    const r = await repo('r')
    await writeFile(join(r.share, 'a.txt'), 'a')
    const first = (await r.commit('start'))!
    const away = `${r.share}-away`
    await rename(r.share, away)
    await mkdir(r.share)
    await assert.rejects(r.commit('replaced'), { code: 'LEFT_SHARE_GONE' })
    await assert.rejects(r.status(), { code: 'LEFT_SHARE_GONE' })
    // An incoming head is not applied to the folder now at that path.
    const peer = await repo('peer')
    await writeFile(join(peer.share, 'b.txt'), 'b')
    await assert.rejects(bring(peer, r, (await peer.commit('theirs'))!.cid), { code: 'LEFT_SHARE_GONE' })
    await rm(r.share, { recursive: true })
    await assert.rejects(r.commit('deleted'), { code: 'LEFT_SHARE_GONE' })
    assert.ok((await r.head())!.equals(first.cid))
    await rename(away, r.share)
    assert.equal(await r.commit('back'), undefined)
  })

  it('commits nothing when the folder is replaced while a commit reads it', async () => {
    const r = await repo('during')
    // One file: the rename comes once it is read, with nothing else being read.
    await writeFile(join(r.share, 'a.txt'), 'a')
    const away = `${r.share}-away`
    let moved = false
    const onHash = (): void => {
      if (moved) return
      moved = true
      renameSync(r.share, away)
      mkdirSync(r.share)
    }
    await assert.rejects(r.commit('replaced midway', { onHash }), { code: 'LEFT_SHARE_GONE' })
    assert.ok(moved)
    assert.equal(await r.head(), undefined)
  })
})
