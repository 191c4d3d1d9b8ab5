/**
 * `npm run bench [-- commit sync watch history syncthing scale] [--dir DIR] [--files N]`:
 * generates its own data (a 1 GiB random file and 10,000 small files; for
 * `scale`, a tree of N small files, a million by default, and a directory of
 * N/5) under DIR (default $TMPDIR/left-bench), runs the chosen sections (all
 * but `scale` by default: its tree alone takes minutes to write) and prints
 * markdown tables with ratios against git, restic, rsync and Syncthing
 * measured in the same run, then issue 9's targets, each met or missed in
 * this run (targets.ts). docs/benchmarks.md records the figures.
 */
import { existsSync } from 'node:fs'
import { mkdir, rm, stat } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchCommit } from './commit.js'
import { benchHistory, benchLongHistory } from './history.js'
import { benchScale } from './scale.js'
import { GiB, dirSize, ensureTool, writeRandomFile, writeSmallFiles } from './lib.js'
import { benchSync } from './sync.js'
import { benchSyncthing } from './syncthing.js'
import { Targets } from './targets.js'
import { benchWatch } from './watch.js'

const SECTIONS = ['commit', 'sync', 'watch', 'history', 'syncthing', 'scale'] as const
/** Sections run when none is named. */
const DEFAULT_SECTIONS: readonly string[] = ['commit', 'sync', 'watch', 'history', 'syncthing']

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const options = new Map<string, string>()
  const chosen: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (!arg.startsWith('--')) {
      chosen.push(arg)
      continue
    }
    const [name, inline] = arg.split('=', 2) as [string, string | undefined]
    const value = inline ?? args[++i]
    if (!['--dir', '--files'].includes(name) || value === undefined) throw new Error(`usage: npm run bench -- [${SECTIONS.join(' ')}] [--dir DIR] [--files N]`)
    options.set(name, value)
  }
  const base = options.get('--dir') ?? join(tmpdir(), 'left-bench')
  const files = Number(options.get('--files') ?? 1_000_000)
  if (!Number.isInteger(files) || files < 100) throw new Error('--files takes a whole number of at least 100')
  for (const s of chosen) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`unknown section ${s}; choose from ${SECTIONS.join(', ')}`)
  const run = (s: string): boolean => (chosen.length === 0 ? DEFAULT_SECTIONS.includes(s) : chosen.includes(s))

  ensureTool('/usr/bin/time', 'time')
  const tools = { git: ensureTool('git'), restic: ensureTool('restic'), rsync: ensureTool('rsync'), syncthing: run('syncthing') && ensureTool('syncthing') }
  console.log(`# LEFT benchmarks, ${new Date().toISOString().slice(0, 10)}: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`)

  await mkdir(base, { recursive: true })
  const bigFile = join(base, 'data', 'big-1GiB.bin')
  const smallDir = join(base, 'data', 'small')
  // `scale` alone makes its own tree and needs neither of these.
  const shared = DEFAULT_SECTIONS.some(run)
  if (shared && (!existsSync(bigFile) || (await stat(bigFile)).size !== GiB)) await writeRandomFile(bigFile, GiB)
  if (shared && !existsSync(join(smallDir, 'group-9', 'dir-99'))) {
    await rm(smallDir, { recursive: true, force: true })
    await writeSmallFiles(smallDir)
  }
  const smallSize = shared ? await dirSize(smallDir) : 0
  const work = join(base, 'work')

  const targets = new Targets()
  // Each section's folders go when it ends: kept to the end, a whole run's
  // took about 40 GB.
  const section = async (name: string, body: () => Promise<void>): Promise<void> => {
    if (!run(name)) return
    await body()
    await rm(work, { recursive: true, force: true })
  }
  await section('commit', () => benchCommit(work, { bigFile, bigSize: GiB, smallDir, smallSize }, tools, targets))
  await section('sync', () => benchSync(work, bigFile, tools, targets))
  await section('watch', () => benchWatch(work, bigFile, smallDir, targets))
  await section('history', async () => {
    await benchLongHistory(work)
    await benchHistory(work, tools)
  })
  if (tools.syncthing) await section('syncthing', () => benchSyncthing(work, bigFile, smallDir, targets))
  targets.print()
  await section('scale', () => benchScale(work, join(base, 'data'), files, tools))
}

await main()
