import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { assertOneLineError, left, leftOk, tempDir } from '../helpers/cli.js'
import { killAll, spawnLeft } from '../helpers/peers.js'

/** This file's ports: the peers' listener, and the page. */
const PORT = 27622
const GUI_PORT = 27633

describe('cli: where the status page is served, and left gui (issue 11)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  before(async () => {
    ;({ dir, cleanup } = await tempDir())
    await leftOk(dir, ['init'])
  })
  after(async () => {
    await killAll()
    await cleanup()
  })

  it('gui needs a token first, refuses a page other machines reach unless asked, and obeys --gui off', async () => {
    assertOneLineError(await left(dir, ['gui', '--no-open']), /^left: the status page has no token yet: 'left watch' makes one/)
    const config = await readFile(join(dir, '.left', 'config'), 'utf8')
    const remote = await left(dir, ['watch', '--listen', `127.0.0.1:${PORT}`, '--gui', `0.0.0.0:${GUI_PORT}`])
    assert.equal(remote.code, 2)
    assertOneLineError(remote, /--gui 0\.0\.0\.0:27633 would serve the page to other machines over plain HTTP; add --gui-remote/)
    assert.equal(await readFile(join(dir, '.left', 'config'), 'utf8'), config, 'a refused watch changed the config')

    const off = spawnLeft(dir, ['watch', '--listen', `127.0.0.1:${PORT}`, '--gui', 'off'])
    await off.waitFor(/watching .* on /)
    assertOneLineError(await left(dir, ['gui', '--no-open']), /^left: the status page is off; 'left watch --gui 127\.0\.0\.1:24243' turns it on$/)
    assert.equal((await left(dir, ['stop'])).code, 0)
    await off.exited
    assert.doesNotMatch(off.stdout, /status page/)

    const on = spawnLeft(dir, ['watch', '--gui', `127.0.0.1:${GUI_PORT}`, '--listen', `127.0.0.1:${PORT}`])
    await on.waitFor(new RegExp(`status page on http://127\\.0\\.0\\.1:${GUI_PORT}/ \\('left gui' prints its address with the token\\)`))
    assert.doesNotMatch(on.stdout, /token=/, 'the log shows the token')
    const url = await leftOk(dir, ['gui', '--no-open'])
    assert.match(url, new RegExp(`^http://127\\.0\\.0\\.1:${GUI_PORT}/#token=[\\w-]{32}$`))
    const token = url.slice(url.indexOf('token=') + 6)
    assert.equal((await fetch(`http://127.0.0.1:${GUI_PORT}/api/status`, { headers: { 'x-left-token': token } })).status, 200)
    // Opening hands the browser a private page that leads on, never the address itself (no opener on this PATH).
    assert.equal(await leftOk(dir, ['gui'], { PATH: '/nonexistent' }), url)
    const redirect = join(dir, '.left', 'gui.html')
    assert.equal((await stat(redirect)).mode & 0o777, 0o600)
    assert.ok((await readFile(redirect, 'utf8')).includes(`<meta http-equiv="refresh" content="0;url=${url}">`))
    assert.equal((await fetch(`http://127.0.0.1:${GUI_PORT}/api/status`, { headers: { 'x-left-token': 'nope' } })).status, 401)
    // Another folder wanting the same page address still syncs, without a page.
    const other = await tempDir()
    try {
      await leftOk(other.dir, ['init'])
      const second = spawnLeft(other.dir, ['watch', '--listen', `127.0.0.1:${PORT + 100}`, '--gui', `127.0.0.1:${GUI_PORT}`])
      await second.waitFor(/watching .* on /)
      assert.match(second.stdout, /no status page: cannot listen on 127\.0\.0\.1:27633 \(EADDRINUSE\); 'left watch --gui HOST:PORT' picks another address/)
      // Its `left gui` knows the page there is not its own, and opens nothing.
      const wrong = await left(other.dir, ['gui'])
      assert.equal(wrong.code, 0)
      assert.match(wrong.stdout, /^http:\/\/127\.0\.0\.1:27633\/#token=/)
      assert.equal(wrong.stderr, "left: something else answers at that address (another folder's page?); 'left watch --gui HOST:PORT' gives this folder its own\n")
      assert.equal((await left(other.dir, ['stop'])).code, 0)
      await second.exited
    } finally {
      await other.cleanup()
    }
    // Remembered: a plain `left watch` serves the page where the last --gui said, with the same token.
    assert.equal((await left(dir, ['stop'])).code, 0)
    await on.exited
    const again = spawnLeft(dir, ['watch'])
    await again.waitFor(/status page on http:\/\/127\.0\.0\.1:27633\//)
    assert.equal(await leftOk(dir, ['gui', '--no-open']), url, 'the token changed between runs')
    assert.equal((await left(dir, ['stop'])).code, 0)
    await again.exited
  })
})
