/**
 * `npm run bench [-- commit sync watch history syncthing] [--dir DIR]`: generates its own data
 * (a 1 GiB random file and 10,000 small files) under DIR (default
 * $TMPDIR/left-bench), runs the chosen sections (all by default) and prints
 * markdown tables with ratios against git, restic and rsync measured in the
 * same run. docs/benchmarks.md records the figures.
 */
import { existsSync } from 'node:fs'
import { mkdir, rm, stat } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchCommit } from './commit.js'
import { benchHistory, benchLongHistory } from './history.js'
import { GiB, dirSize, ensureTool, writeRandomFile, writeSmallFiles } from './lib.js'
import { benchSync } from './sync.js'
import { benchSyncthing } from './syncthing.js'
import { benchWatch } from './watch.js'

const SECTIONS = ['commit', 'sync', 'watch', 'history', 'syncthing'] as const

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const dirAt = args.indexOf('--dir')
  const base = dirAt >= 0 ? args[dirAt + 1]! : join(tmpdir(), 'left-bench')
  const chosen = args.filter((_a, i) => dirAt < 0 || (i !== dirAt && i !== dirAt + 1))
  for (const s of chosen) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`unknown section ${s}; choose from ${SECTIONS.join(', ')}`)
  const run = (s: string): boolean => chosen.length === 0 || chosen.includes(s)

  ensureTool('/usr/bin/time', 'time')
  const tools = { git: ensureTool('git'), restic: ensureTool('restic'), rsync: ensureTool('rsync'), syncthing: ensureTool('syncthing') }
  console.log(`# LEFT benchmarks, ${new Date().toISOString().slice(0, 10)}: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`)

  await mkdir(base, { recursive: true })
  const bigFile = join(base, 'data', 'big-1GiB.bin')
  if (!existsSync(bigFile) || (await stat(bigFile)).size !== GiB) await writeRandomFile(bigFile, GiB)
  const smallDir = join(base, 'data', 'small')
  if (!existsSync(join(smallDir, 'group-9', 'dir-99'))) {
    await rm(smallDir, { recursive: true, force: true })
    await writeSmallFiles(smallDir)
  }
  const smallSize = await dirSize(smallDir)
  const work = join(base, 'work')

  if (run('commit')) await benchCommit(work, { bigFile, bigSize: GiB, smallDir, smallSize }, tools)
  if (run('sync')) await benchSync(work, bigFile, tools)
  if (run('watch')) await benchWatch(work, bigFile, smallDir)
  if (run('history')) {
    await benchLongHistory(work)
    await benchHistory(work, tools)
  }
  if (run('syncthing') && tools.syncthing) await benchSyncthing(work, bigFile, smallDir)
  await rm(work, { recursive: true, force: true })
}

await main()
