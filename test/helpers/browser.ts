/** Headless Chromium for the page's tests and screenshots: Debian's build, driven by playwright-core. */
import { access } from 'node:fs/promises'
import { type Browser, chromium } from 'playwright-core'

/** Debian's Chromium; `.ci/run` installs it when it is missing, so the browser tests never skip. */
export const CHROMIUM = '/usr/bin/chromium'

/** Starts headless Chromium with the flags this machine needs (no sandbox as root, no calls home). */
export async function launchChromium(): Promise<Browser> {
  try {
    await access(CHROMIUM)
  } catch {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); .ci/run does`)
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
}
