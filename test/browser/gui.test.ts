import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import axe from 'axe-core'
import type { Browser, Page } from 'playwright-core'
import { launchChromium } from '../helpers/browser.js'
import { commitOk, left, leftOk, statusChanges, tempDir } from '../helpers/cli.js'
import { type LeftProcess, type Peer, type PeerSet, conflictWhilePaused, killAll, makePeers, sleep, watch } from '../helpers/peers.js'

/** The peers' port; each peer's page listens on its own loopback address at GUI_PORT. */
const PORT = 27621
const GUI_PORT = 27631

/** Long enough for a slow machine; the tests wait for what the page shows, never for a time. */
const SHOWN_MS = 20_000

/** The HTTP status of a GET with this Host header (fetch will not send another Host). */
function statusWithHost(url: string, token: string, host: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    request(url, { headers: { host, 'x-left-token': token } }, (res) => {
      res.resume()
      resolve(res.statusCode)
    }).on('error', reject).end()
  })
}

describe('gui: the status page in a real browser', () => {
  let set: PeerSet
  let a: Peer
  let b: Peer
  let watchA: LeftProcess
  let watchArgsA: string[]
  let watchB: LeftProcess
  let browser: Browser
  let page: Page
  let url: string

  /** A's HEAD. */
  const head = async (): Promise<string> => (JSON.parse(await leftOk(a.dir, ['log', '--json', '-n', '1'])) as Array<{ id: string }>)[0]!.id

  /** Once A's folder is all committed (by the page, or by the watcher first), what changed since `before`. */
  async function committedSince(before: string): Promise<string[][]> {
    const deadline = Date.now() + SHOWN_MS
    while (await statusChanges(a.dir) !== 'nothing to commit, share folder clean') {
      if (Date.now() > deadline) throw new Error('the change was never committed')
      await sleep(100)
    }
    const changes = JSON.parse(await leftOk(a.dir, ['diff', before, 'HEAD', '--json'])) as Array<{ path: string; change: string }>
    return changes.map((c) => [c.path, c.change]).sort()
  }

  before(async () => {
    set = await makePeers(2, PORT)
    ;[a, b] = set.peers as [Peer, Peer]
    await writeFile(join(a.share, 'notes.txt'), 'first version\n')
    await commitOk(a.dir, ['-m', 'first notes'])
    await writeFile(join(a.share, 'notes.txt'), 'second version\n')
    await commitOk(a.dir, ['-m', 'second notes'])
    watchArgsA = ['--listen', a.address, '--peers', b.address, '--gui', `${a.host}:${GUI_PORT}`]
    watchA = await watch(a, watchArgsA)
    watchB = await watch(b, ['--listen', b.address, '--peers', a.address, '--gui', `${b.host}:${GUI_PORT}`])
    url = await leftOk(a.dir, ['gui', '--no-open'])
    browser = await launchChromium()
    page = await browser.newPage()
  })

  after(async () => {
    await browser?.close()
    await killAll()
    await set?.cleanup()
  })

  it('prints the address with its token, refuses every API request without it, and shows nothing of the folder without it', async () => {
    assert.match(url, new RegExp(`^http://${a.host.replace(/\./g, '\\.')}:${GUI_PORT}/#token=[\\w-]{32}$`))
    const base = url.slice(0, url.indexOf('#'))
    const token = url.slice(url.indexOf('token=') + 6)
    const secrets = ['notes.txt', 'first notes', 'second notes', 'first version', a.share, a.dir]
    const refused = [
      await fetch(`${base}api/status`),
      await fetch(`${base}api/log`),
      await fetch(`${base}api/events?since=0`),
      await fetch(`${base}api/files?path=`, { headers: { 'x-left-token': 'x'.repeat(32) } }),
      await fetch(`${base}api/pause`, { method: 'POST', body: '{}' }),
      await fetch(`${base}api/status?token=${token}`)
    ]
    for (const res of refused) {
      assert.equal(res.status, 401)
      const body = await res.text()
      for (const secret of secrets) assert.ok(!body.includes(secret), `a refused request saw ${secret}: ${body}`)
    }
    // The page's own files load without it, and hold nothing of the folder.
    for (const file of ['', 'app.js', 'api.js', 'view.js', 'style.css']) {
      const res = await fetch(`${base}${file}`)
      assert.equal(res.status, 200, file)
      const body = await res.text()
      for (const secret of secrets) assert.ok(!body.includes(secret), `${file} holds ${secret}`)
    }
    // A DNS name pointed at loopback (rebinding) is refused even with the token.
    assert.equal(await statusWithHost(`${base}api/status`, token, `evil.example:${GUI_PORT}`), 403)
    assert.equal(await statusWithHost(`${base}api/status`, token, `localhost:${GUI_PORT}`), 200)
    const crossSite = await fetch(`${base}api/pause`, { method: 'POST', headers: { 'x-left-token': token, origin: 'http://evil.example' }, body: '{}' })
    assert.equal(crossSite.status, 403)
    const ok = await fetch(`${base}api/status`, { headers: { 'x-left-token': token } })
    assert.equal(ok.status, 200)
    assert.match(ok.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/)

    // In a browser: the address without the token, and with a wrong one, show only how to get it.
    for (const address of [base, `${base}#token=${'y'.repeat(32)}`]) {
      const anonymous = await browser.newPage()
      await anonymous.goto(address)
      await anonymous.locator('.needs-token').waitFor({ timeout: SHOWN_MS })
      const text = await anonymous.locator('body').innerText()
      assert.match(text, /This page needs its token: run 'left gui' in the folder for its address\./)
      for (const secret of secrets) assert.ok(!text.includes(secret), `the page without the token shows ${secret}`)
      await anonymous.close()
    }
  })

  it('shows this peer, the other peer online and in sync, and the latest commit', async () => {
    await page.goto(url)
    // The token moved into the tab's storage and out of the address bar.
    await page.getByTestId('head-message').waitFor({ timeout: SHOWN_MS })
    assert.doesNotMatch(page.url(), /token/)
    await page.getByTestId('head-message').filter({ hasText: 'second notes' }).waitFor({ timeout: SHOWN_MS })
    const peer = page.locator('article.peer')
    await peer.getByTestId('peer-state').filter({ hasText: /^online$/ }).waitFor({ timeout: SHOWN_MS })
    await peer.getByTestId('peer-sync').filter({ hasText: 'in sync' }).waitFor({ timeout: SHOWN_MS })
    assert.match(await page.locator('#self').innerText(), new RegExp(a.share.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    assert.match(await page.locator('#history').innerText(), /second notes[\s\S]*first notes/)
  })

  it('opens from the page that left gui hands the browser', async () => {
    // No opener on this PATH: left gui only writes the page it would open.
    await leftOk(a.dir, ['gui'], { PATH: '/nonexistent' })
    const opened = await browser.newPage()
    try {
      await opened.goto(pathToFileURL(join(a.dir, '.left', 'gui.html')).href)
      await opened.getByTestId('head-message').filter({ hasText: 'second notes' }).waitFor({ timeout: SHOWN_MS })
      assert.equal(opened.url(), url.slice(0, url.indexOf('#')))
    } finally {
      await opened.close()
    }
  })

  it('shows a commit made with left commit without a reload', async () => {
    await page.evaluate(() => { (globalThis as unknown as { stayed: boolean }).stayed = true })
    await writeFile(join(a.share, 'cli.txt'), 'from the command line\n')
    // The watcher may see the file and commit it first (then `left commit` finds nothing): either commit must show.
    await leftOk(a.dir, ['commit', '-m', 'made on the command line'])
    await page.getByTestId('head-message').filter({ hasText: /^(made on the command line|add cli\.txt)$/ }).waitFor({ timeout: SHOWN_MS })
    assert.equal(await page.evaluate(() => (globalThis as unknown as { stayed?: boolean }).stayed), true, 'the page was reloaded')
  })

  it('shows what a commit changed when it is clicked', async () => {
    await page.locator('#history button', { hasText: /made on the command line|add cli\.txt/ }).first().click()
    await page.locator('#history .changes', { hasText: 'cli.txt' }).waitFor({ timeout: SHOWN_MS })
  })

  it('pauses and resumes a peer', async () => {
    await page.getByRole('button', { name: /^Pause syncing with / }).click()
    await page.locator('article.peer .badge.paused').waitFor({ timeout: SHOWN_MS })
    const paused = JSON.parse(await leftOk(a.dir, ['status', '--json'])) as { synchronizer: { paused: string[] } }
    assert.equal(paused.synchronizer.paused.length, 1)
    await page.getByRole('button', { name: /^Resume syncing with / }).click()
    await page.locator('article.peer .badge.paused').waitFor({ state: 'detached', timeout: SHOWN_MS })
    const resumed = JSON.parse(await leftOk(a.dir, ['status', '--json'])) as { synchronizer: { paused: string[] } }
    assert.deepEqual(resumed.synchronizer.paused, [])
  })

  it('restores an older version of a file through the page, as a commit', async () => {
    await page.getByRole('button', { name: 'Versions of notes.txt' }).click()
    const restore = page.getByRole('button', { name: /^Restore notes\.txt from / })
    await restore.first().waitFor({ timeout: SHOWN_MS })
    const before = await head()
    await restore.first().click()
    // The page's commit, or the watcher's own if it saw the change first.
    await page.getByTestId('head-message').filter({ hasText: /^(restore notes\.txt from |update notes\.txt$)/ }).waitFor({ timeout: SHOWN_MS })
    assert.equal(await readFile(join(a.share, 'notes.txt'), 'utf8'), 'first version\n')
    assert.deepEqual(await committedSince(before), [['notes.txt', 'modified']])
  })

  it('shows a conflict with both versions side by side, and keeps the one clicked, as a commit', async () => {
    await conflictWhilePaused(a, b, 'clash.txt', { text: 'made on A\n', message: 'clash on A' }, { text: 'made on B, a little longer\n', message: 'clash on B' })
    const item = page.locator('article.conflict-item', { hasText: 'clash.txt' })
    await item.waitFor({ timeout: SHOWN_MS })
    const copy = (await item.getAttribute('data-copy'))!
    assert.match(copy, /^clash\.sync-conflict-[0-9a-f]{16}-\d{8}-\d{6}\.txt$/)
    const sides = await item.locator('.side').allInnerTexts()
    assert.equal(sides.length, 2)
    const kept = await readFile(join(a.share, 'clash.txt'), 'utf8')
    const other = await readFile(join(a.share, copy), 'utf8')
    // Each side shows its own size, time and peer.
    assert.match(sides[0]!, new RegExp(`^This version\\n+${Buffer.byteLength(kept)} B · \\d{4}-.*\\n+by [0-9a-f]{16}$`))
    assert.match(sides[1]!, new RegExp(`^That version \\(clash\\.sync-conflict-.*\\)\\n+${Buffer.byteLength(other)} B · \\d{4}-.*\\n+by [0-9a-f]{16}$`))
    const before = await head()
    await page.getByRole('button', { name: 'Keep that version of clash.txt' }).click()
    await item.waitFor({ state: 'detached', timeout: SHOWN_MS })
    assert.equal(await readFile(join(a.share, 'clash.txt'), 'utf8'), other)
    await assert.rejects(readFile(join(a.share, copy)))
    assert.deepEqual(await committedSince(before), [[copy, 'deleted'], ['clash.txt', 'modified']])
  })

  it('has no serious accessibility violations (axe-core)', async () => {
    // axe is injected from the test, which the page's CSP would refuse; this context alone bypasses it.
    const context = await browser.newContext({ bypassCSP: true })
    try {
      const checked = await context.newPage()
      await checked.goto(url)
      await checked.getByTestId('head-message').waitFor({ timeout: SHOWN_MS })
      await checked.getByRole('button', { name: 'Versions of notes.txt' }).click()
      await checked.locator('#versions li').first().waitFor({ timeout: SHOWN_MS })
      await checked.evaluate(axe.source)
      const result = await checked.evaluate(() => (globalThis as unknown as { axe: { run(): Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: unknown[] }> }> } }).axe.run())
      const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      assert.deepEqual(serious.map((v) => `${v.id}: ${v.help} (${v.nodes.length})`), [])
    } finally {
      await context.close()
    }
  })

  it('lists the warnings the daemon logs, such as a refused peer', async () => {
    const stranger = await tempDir()
    try {
      await leftOk(stranger.dir, ['init'])
      assert.equal((await left(stranger.dir, ['sync', a.address])).code, 6)
    } finally {
      await stranger.cleanup()
    }
    await page.locator('#notices li', { hasText: /refused .*: it does not hold this folder's key/ }).waitFor({ timeout: SHOWN_MS })
  })

  it('says "paused" while every peer is paused', async () => {
    await page.getByRole('button', { name: 'Pause all' }).click()
    await page.getByTestId('state').filter({ hasText: /^paused$/ }).waitFor({ timeout: SHOWN_MS })
    await page.getByRole('button', { name: 'Resume all' }).click()
    await page.getByTestId('state').filter({ hasText: /^watching$/ }).waitFor({ timeout: SHOWN_MS })
  })

  it('shows a peer going offline', async () => {
    assert.equal((await left(b.dir, ['stop'])).code, 0)
    await watchB.exited
    await page.locator('article.peer').getByTestId('peer-state').filter({ hasText: /^offline$/ }).waitFor({ timeout: SHOWN_MS })
  })

  it('lets the daemon stop with the page open and a request left half sent, and follows the next one', async () => {
    await page.locator('#connection .online').waitFor({ timeout: SHOWN_MS })
    const half = connect(GUI_PORT, a.host)
    await new Promise((resolve) => half.once('connect', resolve))
    half.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n')
    half.on('error', () => {})
    assert.equal((await left(a.dir, ['stop'])).code, 0)
    // An unref'd timer: once the race is decided it must not hold the test process open.
    const exited = await Promise.race([watchA.exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), SHOWN_MS).unref())])
    half.destroy()
    assert.ok(exited, `left watch did not exit within ${SHOWN_MS} ms of left stop`)
    await page.locator('#connection', { hasText: 'not connected' }).waitFor({ timeout: SHOWN_MS })
    watchA = await watch(a, watchArgsA)
    await page.locator('#connection .online').waitFor({ timeout: SHOWN_MS })
    // The new daemon's events count from 1 again; the page reads them from its start, so this commit shows.
    await writeFile(join(a.share, 'after.txt'), 'after the restart\n')
    await leftOk(a.dir, ['commit', '-m', 'after the restart'])
    await page.getByTestId('head-message').filter({ hasText: /^(after the restart|add after\.txt)$/ }).waitFor({ timeout: SHOWN_MS })
  })
})
