import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { LEFT_BIN, inNewFolder } from '../helpers/cli.js'

const SCRIPT = '/usr/bin/script'
const run = promisify(execFile)

/** Runs `left ...args` on a real pseudo-terminal (util-linux `script`), 100 columns wide; returns all it printed. */
async function onTerminal(cwd: string, args: readonly string[]): Promise<string> {
  const command = `stty cols 100; ${[process.execPath, LEFT_BIN, ...args].map((a) => `'${a}'`).join(' ')}`
  const { stdout } = await run(SCRIPT, ['-qec', command, '/dev/null'], { cwd, env: { ...process.env, LEFT_DEBUG: '' } })
  return stdout
}

describe('cli: progress on a terminal (issue 10)', { skip: existsSync(SCRIPT) ? false : `${SCRIPT} (util-linux) is missing, so no pseudo-terminal to test on` }, () => {
  it('shows commit, checkout and fsck progress on a terminal, erases it, and shows none with -q', async () => {
    await inNewFolder(async (dir) => {
      for (let i = 0; i < 20; i++) await writeFile(join(dir, 'share', `f${i}.bin`), Buffer.alloc(64 << 10, i))
      const commit = await onTerminal(dir, ['commit', '-m', 'first'])
      assert.match(commit, /\r\x1b\[Kcommitting: \d+ files, [\d.]+ \w+, [\d.]+ \w+\/s/)
      assert.match(commit, /\r\x1b\[K\[[a-z2-7]{8,}\] first \(20 added/, 'erased before the result')
      await writeFile(join(dir, 'share', 'f0.bin'), 'changed')
      await onTerminal(dir, ['commit', '-q', '-m', 'second'])
      const checkout = await onTerminal(dir, ['checkout', 'HEAD~1'])
      assert.match(checkout, /checking out: 1 of 1 files, [\d.]+ KiB of 64\.0 KiB/)
      assert.match(await onTerminal(dir, ['fsck']), /checking: \d+ objects/)
      const quiet = await onTerminal(dir, ['fsck', '-q'])
      assert.doesNotMatch(quiet, /checking:/)
      assert.match(quiet, /: ok\r?\n$/)
    })
  })
})
