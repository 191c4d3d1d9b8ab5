import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { left, leftOk, tempDir } from '../helpers/cli.js'
import { killAll, spawnLeft } from '../helpers/peers.js'

/** The repository root: this file runs from dist/test/cli/. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

/** The unit file shown in docs/service.md: the first ```ini block. */
async function unitFromDocs(): Promise<string> {
  const page = await readFile(join(ROOT, 'docs/service.md'), 'utf8')
  const m = /```ini\n([\s\S]*?)```/.exec(page)
  assert.ok(m, 'docs/service.md shows a unit file')
  return m[1]!
}

/** Sections of a systemd unit as maps of key to value; fails on any line that is not a section, a key=value or a comment. */
function parseUnit(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>()
  let current: Map<string, string> | undefined
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const section = /^\[([A-Za-z]+)\]$/.exec(line)
    if (section) {
      current = new Map()
      sections.set(section[1]!, current)
      continue
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line)
    assert.ok(kv && current, `line ${i + 1} of the unit is not a key=value in a section: ${raw}`)
    current.set(kv[1]!, kv[2]!)
  }
  return sections
}

/** A unit command line for `home`: `%h` expanded, `/usr/bin/env left` dropped, leaving left's arguments. */
function leftArgs(command: string, home: string): string[] {
  const words = command.replaceAll('%h', home).split(/\s+/)
  assert.deepEqual(words.slice(0, 2), ['/usr/bin/env', 'left'])
  return words.slice(2)
}

describe('docs/service.md: the systemd unit', () => {
  let home: string
  let cleanup: () => Promise<void>
  before(async () => ({ dir: home, cleanup } = await tempDir('left-home-')))
  after(async () => {
    await killAll()
    await cleanup()
  })

  it('parses, has what a service needs, and passes systemd-analyze verify where systemd is installed', async (t) => {
    const text = await unitFromDocs()
    const unit = parseUnit(text)
    assert.deepEqual([...unit.keys()], ['Unit', 'Service', 'Install'])
    const service = unit.get('Service')!
    assert.equal(service.get('Type'), 'simple')
    assert.match(service.get('ExecStart')!, / watch$/)
    assert.match(service.get('ExecStop')!, / stop$/)
    assert.equal(unit.get('Install')!.get('WantedBy'), 'default.target')
    const verify = spawnSync('systemd-analyze', ['--version'])
    if (verify.error !== undefined) return t.skip('systemd-analyze is not installed')
    const path = join(home, 'left-photos.service')
    await writeFile(path, text)
    const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
  })

  it('starts with its ExecStart and stops cleanly with its ExecStop', async () => {
    const service = parseUnit(await unitFromDocs()).get('Service')!
    const folder = join(home, 'photos')
    await leftOk(home, ['-C', folder, 'init'])
    // As `left watch --listen` would remember it: a free loopback port keeps this test off real ones.
    const configPath = join(folder, '.left/config')
    await writeFile(configPath, JSON.stringify({ ...JSON.parse(await readFile(configPath, 'utf8')), listen: '127.0.0.1:0' }))
    await writeFile(join(folder, 'share/photo.jpg'), 'jpeg')
    const daemon = spawnLeft(home, leftArgs(service.get('ExecStart')!, home))
    await daemon.waitFor(/watching .* on /)
    assert.match(await leftOk(home, ['-C', folder, 'status']), /^synchronizer: \w+ since .*left watch, pid \d+/m)
    const stop = await left(home, leftArgs(service.get('ExecStop')!, home))
    assert.equal(stop.code, 0, stop.stderr)
    assert.match(stop.stdout, /^stopped the synchronizer \(pid \d+\)$/m)
    assert.equal((await daemon.exited).code, 0, daemon.output())
    assert.match(daemon.stdout, /committed \w+: 1 added/)
  })
})
