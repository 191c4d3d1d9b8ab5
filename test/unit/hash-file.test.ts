import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BlockWriter } from '../../src/worktree/block-writer.js'
import { hashFile } from '../../src/worktree/hash-file.js'
import { tempDir } from '../helpers/cli.js'

describe('worktree/hash-file', () => {
  it('never reads through a symlink that took a file\'s place (ELOOP, not the target\'s bytes)', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      await writeFile(join(dir, 'outside-secret'), 'not for the share')
      await symlink(join(dir, 'outside-secret'), join(dir, 'swapped'))
      await assert.rejects(hashFile(join(dir, 'swapped'), 'swapped', new BlockWriter(undefined)),
        (err: Error & { code?: string }) => err.code === 'LEFT_FILE_ACCESS' && /swapped \(ELOOP\)/.test(err.message))
      const real = await hashFile(join(dir, 'outside-secret'), 'outside-secret', new BlockWriter(undefined))
      assert.equal(real.root.size, 'not for the share'.length)
    } finally {
      await cleanup()
    }
  })
})
