/**
 * Local history benchmarks (issue 2): committing a 1 GiB file and 10,000
 * small files, a no-op re-commit, and checkout, against git and restic on
 * the same bytes, plus the machine's raw SHA-256 speed as the ceiling.
 */
import { execFileSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { copyFile, link, mkdir, open, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { MiB, type Timed, fmt, left, printTable, scratch, sha256Speed, step, timed } from './lib.js'
import type { Targets } from './targets.js'

/** The shared data set. */
export interface CommitData {
  /** A 1 GiB random file. */
  readonly bigFile: string
  readonly bigSize: number
  /** A folder of 10,000 small files. */
  readonly smallDir: string
  readonly smallSize: number
}

const GIT_ID = ['-c', 'user.name=bench', '-c', 'user.email=bench@example.com']
const RESTIC_ENV = { RESTIC_PASSWORD: 'bench-password', RESTIC_CACHE_DIR: '' }

/** Hard-links every file of `from` into `to`, so each tool reads the same bytes without copies. */
async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true })
  for (const e of await readdir(from, { withFileTypes: true })) {
    if (e.isDirectory()) await linkTree(join(from, e.name), join(to, e.name))
    else await link(join(from, e.name), join(to, e.name))
  }
}

async function leftCase(base: string, name: string, fill: (share: string) => Promise<void>): Promise<{ dir: string; commit: Timed }> {
  const dir = await scratch(base, name)
  await left(dir, ['init'])
  await fill(join(dir, 'share'))
  return { dir, commit: await left(dir, ['commit', '-m', 'bench']) }
}

async function gitCase(base: string, name: string, fill: (dir: string) => Promise<void>): Promise<{ dir: string; commit: Timed }> {
  const dir = await scratch(base, name)
  execFileSync('git', ['init', '-q', dir])
  await fill(dir)
  return { dir, commit: await timed('sh', ['-c', `git add -A && git ${GIT_ID.join(' ')} commit -qm bench`], { cwd: dir }) }
}

async function resticCase(base: string, name: string, source: string): Promise<{ repo: string; backup: Timed }> {
  const repo = await scratch(base, name)
  execFileSync('restic', ['init', '-q', '-r', repo], { env: { ...process.env, ...RESTIC_ENV }, stdio: 'ignore' })
  return { repo, backup: await timed('restic', ['-r', repo, 'backup', '-q', '.'], { cwd: source, env: RESTIC_ENV }) }
}

/** Runs the commit benchmarks and prints their tables. */
export async function benchCommit(base: string, data: CommitData, tools: { git: boolean; restic: boolean }, targets: Targets): Promise<void> {
  const sha = sha256Speed()
  console.log(`raw SHA-256 (node:crypto, one core): ${fmt.rate(sha, 1)}`)

  step('commit: 1 GiB file')
  const big = await leftCase(base, 'left-big', (share) => link(data.bigFile, join(share, 'big.bin')))
  const bigRows: string[][] = []
  const leftRate = data.bigSize / big.commit.seconds
  bigRows.push(['LEFT commit', fmt.s(big.commit.seconds), fmt.rate(data.bigSize, big.commit.seconds), fmt.mem(big.commit), `${(leftRate / sha).toFixed(2)} of raw SHA-256`])
  targets.add(5, 'a commit of 1 GiB of new data at 0.3 of raw SHA-256 or more (0.5: stretch)', `${(leftRate / sha).toFixed(2)} (${fmt.s(big.commit.seconds)})`, leftRate / sha >= 0.3)
  targets.ownMemory('commit of 1 GiB', big.commit.anon)
  targets.set('commit of 1 GiB', big.commit.seconds)
  if (tools.restic) {
    step('restic: 1 GiB file')
    const r = await resticCase(base, 'restic-big', join(big.dir, 'share'))
    bigRows.push(['restic backup', fmt.s(r.backup.seconds), fmt.rate(data.bigSize, r.backup.seconds), fmt.mem(r.backup), `LEFT is ${fmt.ratio(r.backup.seconds, big.commit.seconds)} faster`])
    await rm(r.repo, { recursive: true, force: true })
  }
  if (tools.git) {
    step('git: 1 GiB file')
    const g = await gitCase(base, 'git-big', (dir) => link(data.bigFile, join(dir, 'big.bin')))
    bigRows.push(['git add + commit', fmt.s(g.commit.seconds), fmt.rate(data.bigSize, g.commit.seconds), fmt.mem(g.commit), `LEFT is ${fmt.ratio(g.commit.seconds, big.commit.seconds)} faster`])
    await rm(g.dir, { recursive: true, force: true })
  }
  // A re-commit after 1 MiB is overwritten in the middle: the file is a
  // link to the shared data, so the changed version is a copy put in its place.
  step('commit: 1 GiB file, 1 MiB overwritten')
  const edited = join(big.dir, 'big.edited')
  await copyFile(data.bigFile, edited)
  const fh = await open(edited, 'r+')
  await fh.write(randomFillSync(Buffer.allocUnsafe(MiB)), 0, MiB, data.bigSize / 2)
  await fh.close()
  await rename(edited, join(big.dir, 'share', 'big.bin'))
  const again = await left(big.dir, ['commit', '-m', 'edited'])
  const againRate = data.bigSize / again.seconds
  bigRows.push(['LEFT re-commit, 1 MiB overwritten', fmt.s(again.seconds), fmt.rate(data.bigSize, again.seconds), fmt.mem(again), `${(againRate / sha).toFixed(2)} of raw SHA-256`])
  targets.add(3, 'the re-commit of 1 GiB with 1 MiB overwritten at 0.5 of raw SHA-256 or more', `${(againRate / sha).toFixed(2)} (${fmt.s(again.seconds)})`, againRate / sha >= 0.5)
  targets.ownMemory('re-commit of 1 GiB', again.anon)
  // Checkout of the 1 GiB file: away to an empty commit and back.
  await rm(join(big.dir, 'share', 'big.bin'))
  await left(big.dir, ['commit', '-m', 'empty'])
  const bigCheckout = await left(big.dir, ['checkout', 'HEAD~1'])
  bigRows.push(['LEFT checkout (writes 1 GiB)', fmt.s(bigCheckout.seconds), fmt.rate(data.bigSize, bigCheckout.seconds), fmt.mem(bigCheckout), ''])
  targets.ownMemory('checkout of 1 GiB', bigCheckout.anon)
  printTable(`Commit of one 1 GiB random file (SHA-256 ${fmt.rate(sha, 1)})`, ['tool', 'time', 'throughput', 'peak RSS', 'ratio'], bigRows)
  await rm(big.dir, { recursive: true, force: true })

  step('commit: 10,000 files')
  const small = await leftCase(base, 'left-small', (share) => linkTree(data.smallDir, share))
  const noop = await left(small.dir, ['commit'])
  if (!noop.stdout.includes('nothing to commit')) throw new Error(`no-op commit committed: ${noop.stdout}`)
  const rows: string[][] = [['LEFT commit', fmt.s(small.commit.seconds), fmt.mem(small.commit), ''], ['LEFT no-op commit', fmt.s(noop.seconds), fmt.mem(noop), '']]
  targets.add(5, 'a no-op commit of 10,000 files under 0.3 s', fmt.s(noop.seconds), noop.seconds < 0.3)
  targets.ownMemory('commit of 10,000 files', small.commit.anon)
  if (tools.restic) {
    const r = await resticCase(base, 'restic-small', join(small.dir, 'share'))
    const again = await timed('restic', ['-r', r.repo, 'backup', '-q', '.'], { cwd: join(small.dir, 'share'), env: RESTIC_ENV })
    rows.push(['restic backup', fmt.s(r.backup.seconds), fmt.mem(r.backup), `LEFT is ${fmt.ratio(r.backup.seconds, small.commit.seconds)} faster`])
    targets.add(5, 'a commit of 10,000 files faster than restic backs them up', `${fmt.s(small.commit.seconds)} against ${fmt.s(r.backup.seconds)}`, small.commit.seconds < r.backup.seconds)
    rows.push(['restic backup, unchanged', fmt.s(again.seconds), fmt.mem(again), `LEFT no-op is ${fmt.ratio(again.seconds, noop.seconds)} faster`])
    const target = await scratch(base, 'restic-restore')
    const restore = await timed('restic', ['-r', r.repo, 'restore', 'latest', '-q', '--target', target], { env: RESTIC_ENV })
    rows.push(['restic restore', fmt.s(restore.seconds), fmt.mem(restore), ''])
    await rm(r.repo, { recursive: true, force: true })
    await rm(target, { recursive: true, force: true })
  }
  // Checkout: delete everything, commit, then bring it all back.
  for (const e of await readdir(join(small.dir, 'share'))) await rm(join(small.dir, 'share', e), { recursive: true })
  await left(small.dir, ['commit', '-m', 'empty'])
  const checkout = await left(small.dir, ['checkout', 'HEAD~1'])
  rows.push(['LEFT checkout (writes 10,000 files)', fmt.s(checkout.seconds), fmt.mem(checkout), ''])
  targets.ownMemory('checkout of 10,000 files', checkout.anon)
  if (tools.git) {
    const g = await gitCase(base, 'git-small', (dir) => linkTree(data.smallDir, dir))
    const status = await timed('git', ['status', '--porcelain'], { cwd: g.dir })
    rows.push(['git add + commit', fmt.s(g.commit.seconds), fmt.mem(g.commit), `LEFT is ${fmt.ratio(g.commit.seconds, small.commit.seconds)} faster`])
    rows.push(['git status, unchanged', fmt.s(status.seconds), fmt.mem(status), ''])
    execFileSync('sh', ['-c', `git rm -rq . && git ${GIT_ID.join(' ')} commit -qm empty`], { cwd: g.dir })
    const gco = await timed('git', ['checkout', '-q', 'HEAD~1'], { cwd: g.dir })
    rows.push(['git checkout (writes 10,000 files)', fmt.s(gco.seconds), fmt.mem(gco), `LEFT is ${fmt.ratio(gco.seconds, checkout.seconds)} faster`])
    targets.add(7, 'a checkout of 10,000 files no slower than git checkout', `${fmt.s(checkout.seconds)} against ${fmt.s(gco.seconds)}`, checkout.seconds <= gco.seconds)
    await rm(g.dir, { recursive: true, force: true })
  }
  printTable(`10,000 files of 4–64 KiB in nested dirs (${fmt.mb(data.smallSize)})`, ['tool', 'time', 'peak RSS', 'ratio'], rows)
  await rm(small.dir, { recursive: true, force: true })
}
