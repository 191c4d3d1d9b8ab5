/**
 * LEFT against Syncthing (issue 9): two `left watch` peers and two Syncthing
 * instances on loopback, the same changes made in the same run, timed from
 * the moment the change is in the sender's folder until the receiver has it
 * byte for byte. LEFT's time includes its commit, as Syncthing's includes
 * its hashing. Each change lands at once (written beside the folder, then
 * renamed in), so neither tool sees a half-written file; but for issue
 * 9's "done when" the first 0.1% of a 200 MB file is overwritten in
 * place, as the CAN201 run does, and 50 small files are moved in with a
 * new 1 GiB file (its TC_FC case).
 *
 * Syncthing runs as shipped, with what would reach the Internet turned off
 * (discovery, relays, NAT, usage reports, upgrades) and its folder watcher
 * off: the bench asks for a scan through the REST API the moment a change
 * is in place, which spares Syncthing its watcher delay (at least 1 s).
 * LEFT's watcher waits for 200 ms of quiet and files 400 ms old, and that
 * wait is in its figures.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { randomFillSync } from 'node:crypto'
import { copyFile, cp, mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { GiB, MiB, Peer, fmt, left, printTable, propagation, scratch, sleep, step, writeCompressibleFile, writeRandomFile } from './lib.js'
import type { Targets } from './targets.js'

const LEFT_PORT = 24420
const ST_PORT = 24421
const GUI_PORT = [24422, 24423]
const HOSTS = ['127.0.0.1', '127.0.0.2']
const FOLDER = 'bench'

/** One Syncthing instance, driven through its REST API. */
class Syncthing {
  private child: ChildProcess | undefined
  private log = ''
  readonly id: string
  readonly apiKey: string

  constructor(readonly home: string, readonly gui: number, readonly listen: string) {
    // It says the device id on stderr and the rest on stdout.
    const run = spawnSync('syncthing', ['generate', `--home=${home}`, '--no-default-folder', '--skip-port-probing'], { encoding: 'utf8' })
    const out = `${run.stdout}${run.stderr}`
    const id = /Device ID: ([A-Z0-9-]+)/.exec(out)?.[1]
    if (id === undefined) throw new Error(`syncthing generate printed no device id: ${out}`)
    this.id = id
    const configPath = join(home, 'config.xml')
    let xml = readFileSync(configPath, 'utf8')
    const set = (tag: string, value: string): void => {
      const re = new RegExp(`<${tag}>[^<]*</${tag}>`)
      if (!re.test(xml)) throw new Error(`syncthing config has no <${tag}>`)
      xml = xml.replace(re, `<${tag}>${value}</${tag}>`)
    }
    xml = xml.replace(/(<gui[^>]*>\s*<address>)[^<]*(<\/address>)/, `$1127.0.0.1:${gui}$2`)
    set('listenAddress', `tcp://${listen}`)
    for (const tag of ['globalAnnounceEnabled', 'localAnnounceEnabled', 'relaysEnabled', 'natEnabled', 'startBrowser', 'crashReportingEnabled']) set(tag, 'false')
    set('urAccepted', '-1')
    set('autoUpgradeIntervalH', '0')
    this.apiKey = /<apikey>([^<]+)<\/apikey>/.exec(xml)?.[1] ?? ''
    writeFileSync(configPath, xml)
  }

  async start(): Promise<void> {
    this.child = spawn('syncthing', ['serve', `--home=${this.home}`, '--no-browser', '--no-restart', '--no-upgrade'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STNOUPGRADE: '1' } })
    this.child.stdout!.on('data', (d: Buffer) => { this.log = (this.log + d.toString()).slice(-4000) })
    this.child.stderr!.on('data', (d: Buffer) => { this.log = (this.log + d.toString()).slice(-4000) })
    const deadline = Date.now() + 60_000
    for (;;) {
      try {
        await this.api('GET', '/rest/system/ping')
        return
      } catch {
        if (this.child.exitCode !== null || Date.now() > deadline) throw new Error(`syncthing did not start: ${this.log}`)
        await sleep(100)
      }
    }
  }

  /** One REST call; resolves with the parsed JSON answer (or undefined for an empty one). */
  async api(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`http://127.0.0.1:${this.gui}${path}`, {
      method,
      headers: { 'X-API-Key': this.apiKey, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const text = await res.text()
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`)
    return text === '' ? undefined : JSON.parse(text)
  }

  /** Shares `path` as FOLDER with `other`, which it reaches at `address`. */
  async share(path: string, other: Syncthing, address: string): Promise<void> {
    await this.api('POST', '/rest/config/devices', { deviceID: other.id, name: other.id.slice(0, 7), addresses: [`tcp://${address}`] })
    await this.api('POST', '/rest/config/folders', {
      id: FOLDER, label: FOLDER, path, type: 'sendreceive',
      devices: [{ deviceID: this.id }, { deviceID: other.id }],
      fsWatcherEnabled: false, rescanIntervalS: 3600
    })
  }

  async waitConnected(other: Syncthing): Promise<void> {
    const deadline = Date.now() + 60_000
    for (;;) {
      const c = await this.api('GET', '/rest/system/connections') as { connections: Record<string, { connected: boolean }> }
      if (c.connections[other.id]?.connected === true) return
      if (Date.now() > deadline) throw new Error(`syncthing did not connect to its peer: ${this.log}`)
      await sleep(100)
    }
  }

  /** Rescans the folder now; resolves when the scan has been asked for. */
  scan(): Promise<unknown> {
    return this.api('POST', `/rest/db/scan?folder=${FOLDER}`)
  }

  async stop(): Promise<void> {
    if (this.child === undefined || this.child.exitCode !== null) return
    const closed = new Promise((r) => this.child!.once('close', r))
    this.child.kill('SIGTERM')
    await closed
  }
}

/** Bytes of the files under `dir`, leaving out Syncthing's temporary files and folder marker. */
async function treeBytes(dir: string): Promise<number> {
  let total = 0
  for (const name of await readdir(dir, { recursive: true }).catch(() => [] as string[])) {
    const base = name.split('/').pop()!
    if (base.startsWith('.syncthing.') || name.includes('.stfolder')) continue
    const s = await stat(join(dir, name)).catch(() => undefined)
    if (s?.isFile()) total += s.size
  }
  return total
}

/** Waits until the tree `copy` holds as many bytes as `source`, then compares them file by file; returns seconds. */
async function treeArrival(source: string, copy: string, started: bigint): Promise<number> {
  const want = await treeBytes(source)
  const deadline = Date.now() + 600_000
  let last = process.hrtime.bigint()
  while ((await treeBytes(copy)) !== want) {
    if (Date.now() > deadline) throw new Error(`${source} did not reach ${copy}`)
    await sleep(20)
  }
  last = process.hrtime.bigint()
  // Untimed: every file is compared, so a tree of the right size but wrong bytes fails the run.
  const diff = spawn('diff', ['-r', '-q', '-x', '.stfolder', source, copy], { stdio: 'ignore' })
  const code = await new Promise<number | null>((r) => diff.once('close', r))
  if (code !== 0) throw new Error(`${copy} differs from ${source}`)
  return Number(last - started) / 1e9
}

/** Runs the LEFT–Syncthing comparison and prints its table. */
export async function benchSyncthing(base: string, bigFile: string, smallDir: string, targets: Targets): Promise<void> {
  const staging = await scratch(base, 'st-staging')
  const leftDirs = await Promise.all([scratch(base, 'st-left-a'), scratch(base, 'st-left-b')])
  await left(leftDirs[0]!, ['init'])
  const key = (await left(leftDirs[0]!, ['key'])).stdout.trim()
  await left(leftDirs[1]!, ['init', '--key', key])
  const stDirs = await Promise.all([scratch(base, 'st-a'), scratch(base, 'st-b')])
  const stShares = stDirs.map((d) => join(d, 'share'))
  for (const s of stShares) await mkdir(s)

  const peers = HOSTS.map((host, i) => new Peer(leftDirs[i]!, ['watch', '--listen', `${host}:${LEFT_PORT}`, '--peers', `${HOSTS[1 - i]}:${LEFT_PORT}`]))
  const st = HOSTS.map((host, i) => new Syncthing(join(stDirs[i]!, 'home'), GUI_PORT[i]!, `${host}:${ST_PORT}`))
  const rows: string[][] = []
  try {
    for (const p of peers) await p.waitFor(/online/)
    for (const s of st) await s.start()
    await st[0]!.share(stShares[0]!, st[1]!, `${HOSTS[1]}:${ST_PORT}`)
    await st[1]!.share(stShares[1]!, st[0]!, `${HOSTS[0]}:${ST_PORT}`)
    await st[0]!.waitConnected(st[1]!)

    const leftShare = (i: number, ...rest: string[]): string => join(leftDirs[i]!, 'share', ...rest)
    /**
     * Makes `name` beside each sender with `make` (given the sender's current
     * `name`, for an edit), renames it in, and times each tool until its
     * receiver has it.
     */
    const both = async (what: string, name: string, make: (staged: string, current: string) => Promise<void>, tree = false): Promise<number[]> => {
      step(`syncthing: ${what}`)
      const seconds: number[] = []
      for (const tool of ['left', 'syncthing'] as const) {
        const sender = tool === 'left' ? leftShare(0) : stShares[0]!
        const receiver = tool === 'left' ? leftShare(1) : stShares[1]!
        const staged = join(staging, name)
        await rm(staged, { recursive: true, force: true })
        await make(staged, join(sender, name))
        const started = process.hrtime.bigint()
        await rename(staged, join(sender, name))
        if (tool === 'syncthing') void st[0]!.scan()
        seconds.push(tree
          ? await treeArrival(join(sender, name), join(receiver, name), started)
          : await propagation(join(sender, name), [join(receiver, name)], started))
      }
      rows.push(row(what, seconds))
      return seconds
    }
    /**
     * Issue 9's "done when", between two peers: the first 0.1% of a 200 MB
     * file overwritten in place, as the CAN201 run does, timed from the
     * write.
     */
    const partial = async (): Promise<number[]> => {
      const what = 'first 0.1% of a 200 MB file overwritten in place'
      step(`syncthing: ${what}`)
      const seconds: number[] = []
      for (const tool of ['left', 'syncthing'] as const) {
        const sender = tool === 'left' ? leftShare(0) : stShares[0]!
        const receiver = tool === 'left' ? leftShare(1) : stShares[1]!
        const file = join(sender, 'video.bin')
        const fh = await open(file, 'r+')
        const patch = randomFillSync(Buffer.allocUnsafe(200 * 1000))
        const started = process.hrtime.bigint()
        await fh.write(patch, 0, patch.length, 0)
        await fh.close()
        if (tool === 'syncthing') void st[0]!.scan()
        seconds.push(await propagation(file, [join(receiver, 'video.bin')], started))
      }
      rows.push(row(what, seconds))
      return seconds
    }
    /**
     * CAN201's TC_FC between two peers: 50 small files and a new 1 GiB
     * file moved in together; timed until all 50 are on the receiver, then
     * until the big one is. Returns [small, big] for LEFT, then Syncthing.
     */
    const smallBeside = async (): Promise<Array<[number, number]>> => {
      const what = '50 small files moved in beside a new 1 GiB file: all 50 small ones (the 1 GiB file)'
      step(`syncthing: ${what}`)
      const out: Array<[number, number]> = []
      for (const tool of ['left', 'syncthing'] as const) {
        const sender = tool === 'left' ? leftShare(0) : stShares[0]!
        const receiver = tool === 'left' ? leftShare(1) : stShares[1]!
        const staged = join(staging, 'fc')
        await rm(staged, { recursive: true, force: true })
        await mkdir(staged)
        // New random bytes for each tool: neither may have any chunk of it.
        await writeRandomFile(join(staged, 'big.bin'), GiB)
        const small: string[] = []
        for (let i = 0; i < 50; i++) {
          const name = `small-${String(i).padStart(2, '0')}.bin`
          await writeFile(join(staged, name), randomFillSync(Buffer.allocUnsafe(1024 + ((i * 7919) % 100) * 1024)))
          small.push(name)
        }
        await sleep(1_000)
        const started = process.hrtime.bigint()
        await rename(staged, join(sender, 'fc'))
        if (tool === 'syncthing') void st[0]!.scan()
        let smallSeconds = 0
        for (const name of small) smallSeconds = Math.max(smallSeconds, await propagation(join(sender, 'fc', name), [join(receiver, 'fc', name)], started))
        out.push([smallSeconds, await propagation(join(sender, 'fc', 'big.bin'), [join(receiver, 'fc', 'big.bin')], started)])
      }
      const [[l, lb], [s, sb]] = out as [[number, number], [number, number]]
      rows.push([what, `${fmt.s(l)} (${fmt.s(lb)})`, `${fmt.s(s)} (${fmt.s(sb)})`, l <= s ? `LEFT ${fmt.ratio(s, l)} faster` : `LEFT takes ${fmt.ratio(l, s)} Syncthing's time`])
      return out
    }

    const [newLeft, newSyncthing] = (await both('1 GiB random file, new', 'big.bin', (p) => copyFile(bigFile, p))) as [number, number]
    targets.add(2, 'a new 1 GiB file on the other peer faster than Syncthing, LEFT\'s commit counted (two watch peers)', `${fmt.s(newLeft)} against ${fmt.s(newSyncthing)} (${fmt.ratio(newLeft, newSyncthing)})`, newLeft < newSyncthing)
    const rsyncSeconds = targets.get('rsync of 1 GiB')
    if (rsyncSeconds !== undefined) targets.add(2, 'the same within 2× of the rsync daemon (moonshot)', `${fmt.s(newLeft)} against ${fmt.s(rsyncSeconds)} (${fmt.ratio(newLeft, rsyncSeconds)})`, newLeft <= 2 * rsyncSeconds)
    const [overwrite] = (await both('1 MiB overwritten in the middle', 'big.bin', async (to, from) => {
      await copyFile(from, to)
      const fh = await open(to, 'r+')
      const patch = Buffer.allocUnsafe(MiB)
      randomFillSync(patch)
      await fh.write(patch, 0, patch.length, GiB / 2)
      await fh.close()
    })) as [number, number]
    targets.add(3, 'a 1 MiB overwrite of a 1 GiB file, from save to the other watch peer, in under 1 s', fmt.s(overwrite), overwrite < 1)
    await both('1 byte inserted at the start', 'big.bin', async (to, from) => {
      const out = await open(to, 'w')
      const src = await open(from)
      try {
        await out.write(Buffer.from('!'))
        const buf = Buffer.allocUnsafe(16 * MiB)
        for (;;) {
          const { bytesRead } = await src.read(buf, 0, buf.length)
          if (bytesRead === 0) break
          await out.write(buf, 0, bytesRead)
        }
      } finally {
        await src.close()
        await out.close()
      }
    })
    const [text] = (await both('1 GiB compressible text, new', 'log.txt', (p) => writeCompressibleFile(p, GiB))) as [number, number]
    targets.add(2, 'compressible data no slower than random data of the same size (two watch peers)', `${fmt.s(text)} against ${fmt.s(newLeft)}`, text <= newLeft)
    await both('10,000 files of 4–64 KiB (348 MB), new', 'small', (p) => cp(smallDir, p, { recursive: true }), true)
    await both('200 MB random file, new', 'video.bin', (p) => writeRandomFile(p, 200 * 1000 * 1000))
    const [partialLeft] = (await partial()) as [number, number]
    targets.add('done when', 'the 0.1% overwrite of a 200 MB file on the other of two watch peers in under 1.5 s', fmt.s(partialLeft), partialLeft < 1.5)
    const [[smallLeft, bigLeft]] = (await smallBeside()) as [[number, number]]
    targets.add('done when', '50 small files added with a 1 GiB file on the other of two watch peers in under 15 s', `${fmt.s(smallLeft)} (the 1 GiB file: ${fmt.s(bigLeft)})`, smallLeft < 15)
    const memory = await Promise.all(peers.map((p) => p.memory()))
    memory.forEach((m, i) => {
      targets.ownMemory(`watch peer ${'AB'[i]} of two`, m.anon)
      targets.totalMemory(`watch peer ${'AB'[i]} of two`, m.rss)
    })
  } finally {
    for (const p of peers) await p.stop()
    for (const s of st) await s.stop()
  }
  printTable('Two peers on loopback, from the change in the sender\'s folder to the same bytes on the receiver: `left watch` against Syncthing', [
    'case', 'LEFT (commit + sync)', 'Syncthing (scan + sync)', 'ratio'
  ], rows)
}

/** A table row: LEFT's and Syncthing's seconds, and how they compare. */
function row(what: string, [l, s]: readonly number[]): string[] {
  return [what, fmt.s(l!), fmt.s(s!), l! <= s! ? `LEFT ${fmt.ratio(s!, l!)} faster` : `LEFT takes ${fmt.ratio(l!, s!)} Syncthing's time`]
}
