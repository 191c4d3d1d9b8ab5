/**
 * Watch benchmarks (issue 4): three `left watch` peers on 127.0.0.1,
 * 127.0.0.2 and 127.0.0.3. How long a small edit takes to show up on the
 * other two, how long the partial update of a 200 MB file takes, the peak
 * RSS while a 1 GiB file moves, how soon 50 small files moved in beside a
 * new 1 GiB file arrive, and CPU use while idle over 10,000 files.
 * And the CLI beside a running watch (issue 7): how long `left log` and
 * `left status` take through the daemon, during a transfer and at rest,
 * against the same commands on the same folder with no daemon.
 */
import { randomFillSync } from 'node:crypto'
import { copyFile, mkdir, open, readdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Peer, fmt, left, printTable, propagation, scratch, sleep, step, writeRandomFile } from './lib.js'
import type { Targets } from './targets.js'

const PORT = 24410
const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3']

/** Runs the watch benchmarks and prints their tables. */
export async function benchWatch(base: string, bigFile: string, smallDir: string, targets: Targets): Promise<void> {
  const dirs = await Promise.all(HOSTS.map((_h, i) => scratch(base, `watch-${'abc'[i]}`)))
  await left(dirs[0]!, ['init'])
  const key = (await left(dirs[0]!, ['key'])).stdout.trim()
  for (const d of dirs.slice(1)) await left(d, ['init', '--key', key])
  const peers = HOSTS.map((host, i) => new Peer(dirs[i]!, [
    'watch', '--listen', `${host}:${PORT}`, '--peers', HOSTS.filter((h) => h !== host).map((h) => `${h}:${PORT}`).join(',')
  ]))
  const share = (i: number, ...rest: string[]): string => join(dirs[i]!, 'share', ...rest)
  const others = (i: number, ...rest: string[]): string[] => [0, 1, 2].filter((j) => j !== i).map((j) => share(j, ...rest))
  const rows: string[][] = []
  const besideDaemon = { log: NaN, status: NaN }
  try {
    for (const p of peers) await p.waitFor(/watching/)
    for (const p of peers) await p.waitFor(/online[\s\S]*online/)

    step('watch: small edits')
    const times: number[] = []
    for (let i = 0; i < 7; i++) {
      const name = `note-${i}.txt`
      const started = process.hrtime.bigint()
      await writeFile(share(i % 3, name), `edit ${i} at ${Date.now()}\n`)
      times.push(await propagation(share(i % 3, name), others(i % 3, name), started))
      await sleep(300)
    }
    times.sort((x, y) => x - y)
    rows.push(['small edit reaches both other peers (median of 7)', fmt.s(times[3]!), `max ${fmt.s(times.at(-1)!)}`])

    step('watch: 200 MB file and partial update')
    const file = share(2, 'video.bin')
    let started = process.hrtime.bigint()
    await writeRandomFile(file, 200 * 1000 * 1000)
    rows.push(['200 MB file added on C reaches A and B', fmt.s(await propagation(file, others(2, 'video.bin'), started)), ''])
    await sleep(500)
    const fh = await open(file, 'r+')
    const patch = Buffer.allocUnsafe(200 * 1000)
    randomFillSync(patch)
    started = process.hrtime.bigint()
    await fh.write(patch, 0, patch.length, 0)
    await fh.close()
    const partial = await propagation(file, others(2, 'video.bin'), started)
    rows.push(['first 0.1% of it overwritten on C reaches A and B', fmt.s(partial), ''])
    targets.add(3, 'the CAN201 partial update (the first 0.1% of a 200 MB file overwritten) on both other watch peers in under 1 s', fmt.s(partial), partial < 1)

    step('watch: 1 GiB file')
    await sleep(500)
    const before = await Promise.all(peers.map((p) => p.memory()))
    started = process.hrtime.bigint()
    // Meanwhile, ask B (a receiver) for its last commit once a second; each
    // ask starts a Node process, so asking faster would slow the transfer.
    let probing = true
    const during: number[] = []
    const probe = (async () => {
      while (probing) {
        during.push((await left(dirs[1]!, ['log', '-n', '1'])).seconds)
        await sleep(1_000)
      }
    })()
    await copyFile(bigFile, share(0, 'big.bin'))
    const bigSeconds = await propagation(share(0, 'big.bin'), others(0, 'big.bin'), started)
    probing = false
    await probe
    const rss = await Promise.all(peers.map((p) => p.memory()))
    rows.push(['1 GiB random file copied into A reaches B and C (copy included)', fmt.s(bigSeconds), `peak RSS A/B/C: ${rss.map(fmt.mem).join(' / ')} (before it: ${before.map(fmt.mem).join(' / ')})`])
    rss.forEach((m, i) => {
      targets.ownMemory(`watch peer ${'ABC'[i]} of three while 1 GiB moves`, m.anon)
      targets.totalMemory(`watch peer ${'ABC'[i]} of three`, m.rss)
    })
    const commitSeconds = targets.get('commit of 1 GiB')
    const syncSeconds = targets.get('left sync of 1 GiB')
    if (commitSeconds !== undefined && syncSeconds !== undefined) {
      const one = commitSeconds + syncSeconds
      targets.add(6, 'a 1 GiB file on both other watch peers in at most 1.5× one commit and sync of it', `${fmt.s(bigSeconds)} (copy included) against ${fmt.s(one)} (${fmt.ratio(bigSeconds, one)})`, bigSeconds <= 1.5 * one)
    }
    rows.push(['`left log -n 1` on B while that file arrives, once a second', `median ${fmt.s(median(during))}`, `max ${fmt.s(Math.max(...during))} over ${during.length} runs`])

    step('watch: 50 small files moved in beside a new 1 GiB file (CAN201 TC_FC)')
    // Made beside the share and moved in at once, so one commit holds them all
    // and the small files cannot travel first by being committed first.
    const staging = join(dirs[0]!, 'staging-fc')
    await mkdir(staging)
    await writeRandomFile(join(staging, 'big.bin'), 1 << 30)
    const small: string[] = []
    for (let i = 0; i < 50; i++) {
      const name = `small-${String(i).padStart(2, '0')}.bin`
      const bytes = Buffer.allocUnsafe(1024 + ((i * 7919) % 100) * 1024)
      randomFillSync(bytes)
      await writeFile(join(staging, name), bytes)
      small.push(name)
    }
    await sleep(1_000)
    started = process.hrtime.bigint()
    await rename(staging, share(0, 'fc'))
    let smallSeconds = 0
    for (const name of small) smallSeconds = Math.max(smallSeconds, await propagation(share(0, 'fc', name), others(0, 'fc', name), started))
    const fcBigSeconds = await propagation(share(0, 'fc', 'big.bin'), others(0, 'fc', 'big.bin'), started)
    rows.push(['50 small files moved into A beside a new 1 GiB file: all 50 on B and C', fmt.s(smallSeconds), `the 1 GiB file on both: ${fmt.s(fcBigSeconds)}`])
    targets.add(4, 'the 50 small files of CAN201\'s TC_FC on the third peer in under 5 s, while their 1 GiB file still moves', `${fmt.s(smallSeconds)}; the 1 GiB file ${fmt.s(fcBigSeconds)}`, smallSeconds < 5 && smallSeconds < fcBigSeconds)

    step('watch: 10,000 files, then idle')
    started = process.hrtime.bigint()
    await copyTree(smallDir, share(1, 'small'))
    const lastFile = (await readdir(join(smallDir, 'group-9', 'dir-99'))).sort().at(-1)!
    const treeSeconds = await propagation(share(1, 'small', 'group-9', 'dir-99', lastFile), others(1, 'small', 'group-9', 'dir-99', lastFile), started)
    rows.push(['10,000 small files copied into B reach A and C (copy included)', fmt.s(treeSeconds), ''])
    targets.add(6, '10,000 small files copied into one watch peer on both others in under 10 s', `${fmt.s(treeSeconds)} (copy included)`, treeSeconds < 10)
    await sleep(3000)
    const cpu0 = await Promise.all(peers.map((p) => p.cpuSeconds()))
    const idle = 20
    await sleep(idle * 1000)
    const cpu1 = await Promise.all(peers.map((p) => p.cpuSeconds()))
    const pct = cpu1.map((c, i) => (100 * (c - cpu0[i]!)) / idle)
    rows.push([`idle CPU over 10,000+ files, ${idle} s`, `A/B/C: ${pct.map((p) => `${p.toFixed(2)}%`).join(' / ')}`, 'of one core'])

    step('watch: the CLI beside the daemon, then without it')
    besideDaemon.log = await medianOf(5, () => left(dirs[1]!, ['log', '-n', '1']))
    besideDaemon.status = await medianOf(3, () => left(dirs[1]!, ['status']))
  } finally {
    for (const p of peers) await p.stop()
  }
  const alone = { log: await medianOf(5, () => left(dirs[1]!, ['log', '-n', '1'])), status: await medianOf(3, () => left(dirs[1]!, ['status'])) }
  rows.push(['`left log -n 1` on B beside its watch (median of 5)', fmt.s(besideDaemon.log), `no daemon: ${fmt.s(alone.log)} (${fmt.ratio(besideDaemon.log, alone.log)})`])
  rows.push(['`left status` on B, 10,000+ files, beside its watch (median of 3)', fmt.s(besideDaemon.status), `no daemon: ${fmt.s(alone.status)} (${fmt.ratio(besideDaemon.status, alone.status)})`])
  printTable('Three `left watch` peers on 127.0.0.1, 127.0.0.2, 127.0.0.3', ['case', 'result', 'note'], rows)
}

async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true })
  for (const e of await readdir(from, { withFileTypes: true })) {
    if (e.isDirectory()) await copyTree(join(from, e.name), join(to, e.name))
    else await copyFile(join(from, e.name), join(to, e.name))
  }
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? NaN
}

/** Runs `run` `n` times, one after another; the median of its seconds. */
async function medianOf(n: number, run: () => Promise<{ seconds: number }>): Promise<number> {
  const xs: number[] = []
  for (let i = 0; i < n; i++) xs.push((await run()).seconds)
  return median(xs)
}
