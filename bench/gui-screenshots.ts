/**
 * Makes the screenshots in docs/gui.md: two peers running `left watch` on
 * loopback with a little history, the page opened with `left gui`'s address
 * in headless Chromium, on a wide screen and on a phone-sized one.
 * Run with `npm run screenshots`; it writes docs/gui/*.png. It lives in
 * bench/ because node --test runs every script under test/.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { launchChromium } from '../test/helpers/browser.js'
import { commitOk, leftOk } from '../test/helpers/cli.js'
import { conflictWhilePaused, killAll, makePeers, watch } from '../test/helpers/peers.js'

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'gui')
const PORT = 27641
const GUI_PORT = 27651

const set = await makePeers(2, PORT)
const [a, b] = set.peers as [typeof set.peers[0], typeof set.peers[0]]
const browser = await launchChromium()
try {
  await mkdir(join(a.share, 'photos'), { recursive: true })
  await writeFile(join(a.share, 'notes.txt'), 'shopping: milk\n')
  await writeFile(join(a.share, 'photos', 'beach.jpg'), Buffer.alloc(180_000, 7))
  await commitOk(a.dir, ['-m', 'add notes and the beach photo'])
  await writeFile(join(a.share, 'notes.txt'), 'shopping: milk, bread\n')
  await commitOk(a.dir, ['-m', 'bread too'])
  await watch(a, ['--listen', a.address, '--gui', `${a.host}:${GUI_PORT}`])
  await watch(b, ['--listen', b.address, '--peers', a.address, '--gui', `${b.host}:${GUI_PORT}`])
  await writeFile(join(b.share, 'todo.txt'), 'call the plumber\n')
  await leftOk(b.dir, ['commit', '-m', 'a todo list from the laptop'])
  // A conflict: both edit the plan while paused.
  await conflictWhilePaused(a, b, 'plan.txt', { text: 'leave at 9\n', message: 'plan: leave at 9' }, { text: 'leave at 10, after breakfast\n', message: 'plan: leave at 10' })
  const url = await leftOk(a.dir, ['gui', '--no-open'])
  await mkdir(OUT, { recursive: true })
  for (const [name, viewport] of [['page', { width: 1200, height: 900 }], ['phone', { width: 390, height: 844 }]] as const) {
    const page = await browser.newPage({ viewport })
    await page.goto(url)
    await page.locator('article.conflict-item').waitFor()
    await page.locator('#history button', { hasText: 'bread too' }).click()
    await page.getByRole('button', { name: 'Versions of notes.txt' }).click()
    await page.locator('#versions li').nth(1).waitFor()
    await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true })
    await page.close()
  }
  console.log(`wrote ${OUT}/page.png and phone.png`)
} finally {
  await browser.close()
  await killAll()
  await set.cleanup()
}
