/**
 * Scale benchmarks (issue 12): a folder of a million small files (0–4 KiB,
 * 100 to a directory, three levels deep) plus one directory of 200,000
 * one-line files and one file 2,000 directories deep. LEFT's commit, no-op
 * commit, status, a one-file commit, a first sync to a new peer (which must
 * end with every file there) and a one-file sync, against git (add + commit,
 * status), restic (backup, unchanged backup) and rsync over loopback (first
 * copy, no-op) on the same tree in the same run. Every tool reads the one
 * tree in place: LEFT through `init --share`, git through GIT_WORK_TREE.
 * Then, where the system allows a watch per folder on both peers, two
 * `left watch` peers pass one-file changes.
 * `--files N` scales the tree down (the big directory is N/5 entries).
 */
import { execFileSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { opendir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Peer, type Timed, fmt, left, printTable, propagation, receivedBytes, rsyncDaemon, scratch, sleep, step, timed } from './lib.js'

const LEFT_PORT = 24430
const RSYNC_PORT = 24431
const GIT_ID = ['-c', 'user.name=bench', '-c', 'user.email=bench@example.com']
const RESTIC_ENV = { RESTIC_PASSWORD: 'bench-password', RESTIC_CACHE_DIR: '' }
/** A path 2,000 directories deep, as issue 12's black-box run asks: 4,000 bytes, inside PATH_MAX. */
const DEEP = Array.from({ length: 2000 }, () => 'd').join('/')
const DEEP_FILE = join(DEEP, 'f')
const DEEP_TEXT = 'the deepest file\n'
/** Own memory every LEFT operation should stay under (issue 12). */
const OWN_LIMIT = 300e6

/** The tree's shape for `files` small files. */
function shape(files: number): { dirs: number; bigDir: number } {
  return { dirs: Math.ceil(files / 100), bigDir: Math.floor(files / 5) }
}

/**
 * Writes the tree once under `root` (kept for later runs; a marker file
 * says it is complete): `files` files of 0–4 KiB in d-A/d-B/ directories
 * of 100, and `big/` of files/5 one-line files.
 */
function writeTree(root: string, files: number): void {
  const marker = join(root, '..', `complete-${files}`)
  if (existsSync(marker)) {
    // Trees written before the deep file was part of them get it now.
    if (!existsSync(join(root, DEEP_FILE))) writeDeep(root)
    return
  }
  execFileSync('rm', ['-rf', root])
  const pool = Buffer.allocUnsafe(8 * 1024 * 1024)
  randomFillSync(pool)
  const { dirs, bigDir } = shape(files)
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `d-${Math.floor(d / 100)}`, `d-${d % 100}`)
    mkdirSync(dir, { recursive: true })
    for (let f = 0; f < 100 && d * 100 + f < files; f++) {
      const i = d * 100 + f
      const size = (i * 7919) % 4097
      const at = (i * 104729) % (pool.length - size)
      writeFileSync(join(dir, `f-${i}.dat`), pool.subarray(at, at + size))
    }
    if (d % 1000 === 999) step(`scale: wrote ${(d + 1) * 100} files`)
  }
  mkdirSync(join(root, 'big'))
  for (let i = 0; i < bigDir; i++) writeFileSync(join(root, 'big', `line-${i}.txt`), `line ${i}\n`)
  writeDeep(root)
  writeFileSync(marker, '')
}

function writeDeep(root: string): void {
  mkdirSync(join(root, DEEP), { recursive: true })
  writeFileSync(join(root, DEEP_FILE), DEEP_TEXT)
}

/** The regular files under `root`, all the way down, walked without recursion. */
async function countFiles(root: string): Promise<number> {
  let count = 0
  const pending = [root]
  while (pending.length > 0) {
    const dir = pending.pop()!
    for await (const e of await opendir(dir)) {
      if (e.isDirectory()) pending.push(join(dir, e.name))
      else if (e.isFile()) count++
    }
  }
  return count
}

/** A row: what, time, memory, and the comparison. */
function row(what: string, t: Timed, note = ''): string[] {
  return [what, fmt.s(t.seconds), fmt.mem(t), note]
}

/** "met" or "missed", for a target. */
function mark(ok: boolean): string {
  return ok ? 'met' : 'missed'
}

/** Runs the scale benchmarks and prints their tables. */
export async function benchScale(base: string, dataDir: string, files: number, tools: { git: boolean; restic: boolean; rsync: boolean }): Promise<void> {
  const tree = join(dataDir, `scale-${files}`, 'tree')
  step(`scale: writing ${files} files and a directory of ${shape(files).bigDir}`)
  writeTree(tree, files)
  // The deep file included.
  const total = files + shape(files).bigDir + 1
  const a = await scratch(base, 'scale-a')
  const b = await scratch(base, 'scale-b')
  await left(a, ['init', '--share', tree])
  const key = (await left(a, ['key'])).stdout.trim()
  await left(b, ['init', '--key', key])
  const one = join(tree, 'd-0', 'd-0', 'f-7.dat')
  const rows: string[][] = []
  const own: Array<[string, number]> = []
  const leftRow = (what: string, t: Timed, note = ''): Timed => {
    rows.push(row(`LEFT ${what}`, t, note))
    own.push([what, t.anon])
    // Said as it is measured: the whole run takes most of an hour.
    step(`scale: ${rows.at(-1)!.join(' | ')}`)
    return t
  }

  step('scale: LEFT commit')
  const commit = leftRow('commit', await left(a, ['commit', '-m', 'scale']))
  const noop = leftRow('no-op commit', await left(a, ['commit']))
  if (!noop.stdout.includes('nothing to commit')) throw new Error(`no-op commit committed: ${noop.stdout}`)
  const status = leftRow('status', await left(a, ['status']))
  await writeFile(one, 'one file changed\n')
  const oneCommit = leftRow('commit of a one-file change', await left(a, ['commit', '-m', 'one']))

  step('scale: LEFT first sync')
  const server = new Peer(a, ['serve', '--listen', `127.0.0.1:${LEFT_PORT}`])
  let firstSync: Timed
  let oneSync: Timed
  let sender: { rss: number; anon: number }
  try {
    await server.waitFor(/serving/)
    // `serve` commits its folder before it says hello to a new connection,
    // which takes longer than the default 30 s timeout at this size.
    const sync = (): Promise<Timed> => left(b, ['sync', `127.0.0.1:${LEFT_PORT}`, '--timeout', '600'])
    firstSync = await sync()
    step(`scale: first sync ${fmt.s(firstSync.seconds)}, ${fmt.mem(firstSync)}`)
    await writeFile(one, 'one file changed again\n')
    await left(a, ['commit', '-m', 'one more'])
    oneSync = await sync()
    sender = await server.memory()
  } finally {
    await server.stop()
  }
  // Issue 12's black-box run: every file, the deep one included, is on the new peer.
  const onB = await countFiles(join(b, 'share'))
  if (onB !== total) throw new Error(`the new peer holds ${onB} files after sync, not ${total}`)
  if (await readFile(join(b, 'share', DEEP_FILE), 'utf8') !== DEEP_TEXT) throw new Error('the new peer lacks the deep file')
  const watchNote = await watchedChanges(a, b, tree, files)
  await rm(b, { recursive: true, force: true })

  let rsyncFirst: Timed | undefined
  let rsyncNoop: Timed | undefined
  if (tools.rsync) {
    step('scale: rsync')
    const dest = await scratch(base, 'scale-rsync')
    const rsyncd = await rsyncDaemon(base, dest, RSYNC_PORT)
    try {
      // rsync refuses the 2,000-deep path (its receiver's path limit:
      // "Cannot allocate memory"), so it copies the tree without that one file.
      const rsync = (): Promise<Timed> => timed('rsync', ['-a', `--exclude=/${DEEP.slice(0, 1)}/`, `${tree}/`, `rsync://127.0.0.1:${RSYNC_PORT}/bench/`])
      rsyncFirst = await rsync()
      rsyncNoop = await rsync()
    } finally {
      rsyncd.kill()
    }
    await rm(dest, { recursive: true, force: true })
  }

  leftRow('first sync to a new peer (receiver)', firstSync, `received ${fmt.mb(receivedBytes(firstSync))}; sender's own memory ${fmt.mb(sender.anon)}${rsyncFirst ? `; ${fmt.ratio(firstSync.seconds, rsyncFirst.seconds)} rsync's time` : ''}`)
  leftRow('sync of a one-file change', oneSync, `received ${fmt.kb(receivedBytes(oneSync))}`)
  if (watchNote.row !== undefined) rows.push(watchNote.row)
  if (watchNote.anon !== undefined) own.push(['two watch peers', watchNote.anon])
  own.push(['serving the first sync (sender)', sender.anon])
  if (rsyncFirst && rsyncNoop) {
    rows.push(row('rsync first copy (daemon on loopback)', rsyncFirst, 'without the 2,000-deep file, which it refuses'))
    rows.push(row('rsync again, nothing changed', rsyncNoop))
  }

  let resticNoop: Timed | undefined
  if (tools.restic) {
    step('scale: restic')
    const repo = await scratch(base, 'scale-restic')
    execFileSync('restic', ['init', '-q', '-r', repo], { env: { ...process.env, ...RESTIC_ENV }, stdio: 'ignore' })
    const backup = await timed('restic', ['-r', repo, 'backup', '-q', '.'], { cwd: tree, env: RESTIC_ENV })
    resticNoop = await timed('restic', ['-r', repo, 'backup', '-q', '.'], { cwd: tree, env: RESTIC_ENV })
    rows.push(row('restic backup', backup, `LEFT commit takes ${fmt.ratio(commit.seconds, backup.seconds)} its time`))
    rows.push(row('restic backup, unchanged', resticNoop, `LEFT no-op commit takes ${fmt.ratio(noop.seconds, resticNoop.seconds)}, status ${fmt.ratio(status.seconds, resticNoop.seconds)} its time`))
    await rm(repo, { recursive: true, force: true })
  }
  if (tools.git) {
    step('scale: git')
    const gitDir = await scratch(base, 'scale-git')
    const env = { GIT_DIR: gitDir, GIT_WORK_TREE: tree }
    execFileSync('git', ['init', '-q'], { env: { ...process.env, ...env } })
    const add = await timed('sh', ['-c', `git add -A && git ${GIT_ID.join(' ')} commit -qm scale`], { cwd: tree, env })
    const gitStatus = await timed('git', ['status', '--porcelain'], { cwd: tree, env })
    await writeFile(one, 'one file changed for git\n')
    const gitOne = await timed('sh', ['-c', `git add -A && git ${GIT_ID.join(' ')} commit -qm one`], { cwd: tree, env })
    rows.push(row('git add + commit', add, `LEFT commit takes ${fmt.ratio(commit.seconds, add.seconds)} its time`))
    rows.push(row('git status, unchanged', gitStatus, `LEFT status takes ${fmt.ratio(status.seconds, gitStatus.seconds)} its time`))
    rows.push(row('git add + commit of a one-file change', gitOne, `LEFT takes ${fmt.ratio(oneCommit.seconds, gitOne.seconds)} its time`))
    await rm(gitDir, { recursive: true, force: true })
  }
  await rm(a, { recursive: true, force: true })

  printTable(`${total.toLocaleString('en')} files: ${files.toLocaleString('en')} of 0–4 KiB in directories of 100, one directory of ${shape(files).bigDir.toLocaleString('en')}, and one file 2,000 directories deep; all ${total.toLocaleString('en')} on the new peer after its first sync`, ['step', 'time', 'peak RSS', 'notes'], rows)
  const worst = own.reduce((w, x) => (x[1] > w[1] ? x : w))
  printTable('Issue 12 targets at this size', ['target', 'figure', ''], [
    [`own memory under ${fmt.mb(OWN_LIMIT)} for every operation`, `highest: ${worst[0]}, ${fmt.mb(worst[1])}`, mark(worst[1] < OWN_LIMIT)],
    ...(resticNoop ? [['no-op commit and status at least as fast as restic\'s unchanged backup', `${fmt.s(noop.seconds)} and ${fmt.s(status.seconds)} against ${fmt.s(resticNoop.seconds)}`, mark(Math.max(noop.seconds, status.seconds) <= resticNoop.seconds)]] : []),
    ['a one-file sync under 1 s', `left sync: ${fmt.s(oneSync.seconds)}; ${watchNote.figure}`, mark(oneSync.seconds < 1 || (watchNote.median ?? Infinity) < 1)],
    ...(rsyncFirst ? [['first sync no slower than 2× rsync', `${fmt.s(firstSync.seconds)} against ${fmt.s(rsyncFirst.seconds)}`, mark(firstSync.seconds <= 2 * rsyncFirst.seconds)]] : [])
  ])
}

/**
 * Two `left watch` peers on `a` and `b` (in sync), five one-file changes
 * made in `a`'s tree, each timed from the write until `b` holds it: a
 * watch commit looks only at what its watcher reported. Skipped when
 * the watchers, which take an inotify watch per folder on Linux, cannot
 * watch both trees within the system's limit.
 */
async function watchedChanges(a: string, b: string, tree: string, files: number): Promise<{ row?: string[]; figure: string; median?: number; anon?: number }> {
  // The leaf folders, the d-A folders above them, big/, the share and the 2,000 deep ones.
  const needed = 2 * (shape(files).dirs + Math.ceil(shape(files).dirs / 100) + 2 + 2000)
  let limit = Infinity
  try {
    limit = Number(readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8'))
  } catch {
    // Not Linux: no such limit to check.
  }
  if (needed > limit) return { figure: `two watch peers not run: they need ${needed.toLocaleString('en')} inotify watches, the limit is ${limit.toLocaleString('en')}` }
  step('scale: two watch peers')
  const peers = [
    new Peer(a, ['watch', '--listen', `127.0.0.1:${LEFT_PORT}`, '--gui', 'off']),
    new Peer(b, ['watch', '--listen', `127.0.0.2:${LEFT_PORT}`, '--peers', `127.0.0.1:${LEFT_PORT}`, '--gui', 'off'])
  ]
  const times: number[] = []
  const written: string[] = []
  let memory = ''
  let anon = 0
  try {
    for (const p of peers) await p.waitFor(/watching/)
    await peers[1]!.waitFor(/online/)
    // Let both settle after their first whole scans.
    await sleep(5_000)
    for (let i = 0; i < 5; i++) {
      const rel = join(`d-${i % Math.max(1, Math.floor(shape(files).dirs / 100))}`, `d-${(i * 37) % Math.min(100, shape(files).dirs)}`, `watched-${i}.dat`)
      const started = process.hrtime.bigint()
      written.push(join(tree, rel))
      await writeFile(join(tree, rel), `watched change ${i}\n`)
      times.push(await propagation(join(tree, rel), [join(b, 'share', rel)], started))
      await sleep(1_000)
    }
    const [ma, mb] = await Promise.all(peers.map((p) => p.memory()))
    memory = `A ${fmt.mem(ma!)}, B ${fmt.mem(mb!)}`
    anon = Math.max(ma!.anon, mb!.anon)
  } finally {
    for (const p of peers) await p.stop()
    // The tree is kept for later runs.
    for (const f of written) await rm(f, { force: true })
  }
  times.sort((x, y) => x - y)
  const median = times[2]!
  return {
    row: ['LEFT watch: a one-file change reaches the other watch peer (median of 5)', fmt.s(median), memory, `${times.map((t) => fmt.s(t)).join(', ')}`],
    figure: `two watch peers: ${fmt.s(median)}`,
    median,
    anon
  }
}
