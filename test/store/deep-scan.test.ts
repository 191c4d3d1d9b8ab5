import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { leftOk, tempDir } from '../helpers/cli.js'

/** 2,000 one-letter folders: 4,000 bytes of path, inside PATH_MAX. */
const DEEP = Array.from({ length: 2000 }, () => 'd').join('/')

/**
 * Old space the scans below run in. Each level of the walk keeps its
 * folder's path; built with path.join, those paths held 64 MB 1,500
 * folders down (1.1 million string pieces), and the commit ran out of
 * heap. Built a piece per level, the scan's live heap stays under 20 MB.
 */
const HEAP = { NODE_OPTIONS: '--max-old-space-size=48' }

describe('worktree/snapshot: a file 2,000 folders deep', () => {
  let dir = ''
  let cleanup: () => Promise<void> = async () => {}
  before(async () => {
    ;({ dir, cleanup } = await tempDir('left-deep-'))
    await leftOk(dir, ['init'])
    await mkdir(join(dir, 'share', DEEP), { recursive: true })
    await writeFile(join(dir, 'share', DEEP, 'f'), 'deep\n')
  })
  after(() => cleanup())

  it('is committed, scanned again and listed in a small heap: the walk holds one piece of path per level', async () => {
    assert.match(await leftOk(dir, ['commit', '-m', 'deep'], HEAP), /\(1 added, 0 modified, 0 deleted\)/)
    assert.match(await leftOk(dir, ['commit'], HEAP), /nothing to commit/)
    await writeFile(join(dir, 'share', DEEP, 'f'), 'deeper\n')
    assert.match(await leftOk(dir, ['status'], HEAP), new RegExp(`^M ${DEEP}/f$`, 'm'))
  })
})
