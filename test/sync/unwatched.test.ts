import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FolderService } from '../../src/node/service.js'
import type { Repo } from '../../src/repo/repo.js'
import { lookupPath } from '../../src/tree/lookup.js'
import { LogCapture, suiteRepos } from './fixtures.js'

/** Whether HEAD of `repo` holds `path`. */
async function headHas(repo: Repo, path: string): Promise<boolean> {
  const tree = await repo.headTree()
  return tree !== undefined && (await lookupPath(repo.objects, tree, path)) !== undefined
}

describe('node/service: a service with no folder watch scans the whole folder once, not again for each integrate', () => {
  const suite = suiteRepos('left-unwatched-')

  it('a one-shot sync sends the folder as its commit found it; an edit made after that commit stays in the folder for the next one', async () => {
    const a = await suite.repo('a')
    const b = await suite.repo('b')
    const logs = new LogCapture()
    // As `left serve`: commits on each connection.
    const served = await FolderService.start({ repo: a, listen: { host: '127.0.0.1', port: 0 }, commitOnConnect: true, unwatched: true, log: logs.log })
    let syncing: FolderService | undefined
    try {
      await writeFile(join(a.share, 'remote.txt'), 'made on a\n')
      await writeFile(join(b.share, 'local.txt'), 'made on b\n')
      // As `left sync` with no daemon: one whole commit, then the peer.
      syncing = await FolderService.start({ repo: b, unwatched: true, log: logs.log })
      assert.equal(syncing.watching, false)
      assert.ok(await syncing.commitAndAnnounce(undefined, { changedOnly: syncing.watching }))
      // Lands after that commit; a's head is new to b, so b merges it.
      await writeFile(join(b.share, 'later.txt'), 'written while the sync runs\n')
      const session = await syncing.connectOnce(served.listenAddress!)
      await syncing.network.waitInSync(session)
      assert.ok((await a.head())!.equals((await b.head())!))
      assert.ok(await headHas(b, 'remote.txt') && await headHas(b, 'local.txt'), 'both sides\' commits are merged')
      // The merge's commit of local edits did not scan the folder again, so
      // later.txt is not in it: not sent, and not lost either.
      assert.equal(await headHas(b, 'later.txt'), false)
      assert.equal(await readFile(join(b.share, 'later.txt'), 'utf8'), 'written while the sync runs\n')
      assert.deepEqual((await b.status()).map((c) => [c.kind, c.path]), [['added', 'later.txt']])
      assert.equal(await readFile(join(a.share, 'local.txt'), 'utf8'), 'made on b\n')
    } finally {
      await syncing?.stop()
      await served.stop()
    }
    // Once the service has stopped, a commit scans the whole folder again.
    const next = await b.commit()
    assert.ok(next !== undefined && await headHas(b, 'later.txt'))
  })
})
