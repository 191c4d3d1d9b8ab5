/**
 * Several LEFT peers on one machine, for end-to-end network tests: each peer
 * is a real folder in a temp directory with its own loopback address
 * (127.0.0.1, 127.0.0.2, …) and the same port, and `left serve`/`left watch`
 * run as real child processes whose stdout the tests read.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { lstat, mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LEFT_BIN, leftOk, tempDir } from './cli.js'
import { type PathInfo, describeTree } from './tree.js'

/** How long a test waits for something that should happen before it fails. Not a speed assertion. */
export const DEADLINE_MS = 60_000

/** One LEFT folder that plays one machine. */
export interface Peer {
  /** A, B, C… for messages. */
  readonly name: string
  /** The directory holding `.left/` and `share/`. */
  readonly dir: string
  readonly share: string
  /** Its loopback address, like 127.0.0.2. */
  readonly host: string
  /** `host:port`, what other peers dial. */
  readonly address: string
}

/** Peers that share one folder key, and how to remove them. */
export interface PeerSet {
  readonly peers: Peer[]
  readonly key: string
  cleanup(): Promise<void>
}

/**
 * Makes `count` peers of one folder: the first runs `left init`, the others
 * `left init --key` with its key. Peer i listens on 127.0.0.(i+1):`port`.
 */
export async function makePeers(count: number, port: number): Promise<PeerSet> {
  const { dir: root, cleanup } = await tempDir('left-e2e-')
  try {
    const peers: Peer[] = []
    let key = ''
    for (let i = 0; i < count; i++) {
      const name = String.fromCharCode(65 + i)
      const dir = join(root, name)
      const host = `127.0.0.${i + 1}`
      await mkdir(dir)
      await leftOk(dir, i === 0 ? ['init'] : ['init', '--key', key])
      peers.push({ name, dir, share: join(dir, 'share'), host, address: `${host}:${port}` })
      if (i === 0) key = await leftOk(dir, ['key'])
    }
    return { peers, key, cleanup }
  } catch (err) {
    await cleanup()
    throw err
  }
}

/** Every child process started here and not yet known to have exited. */
const running = new Set<LeftProcess>()

/** A long-running `left` command (serve, watch, or a sync we may kill). */
export class LeftProcess {
  readonly child: ChildProcess
  /** Everything printed so far. */
  stdout = ''
  stderr = ''
  /** Resolves when the process has exited, with its exit code and the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  constructor(readonly cwd: string, readonly args: readonly string[], user?: RunAs) {
    this.child = spawn(process.execPath, [LEFT_BIN, ...args], { cwd, env: { ...process.env, LEFT_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'], ...user })
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => { this.stdout += d })
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderr += d })
    running.add(this)
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        running.delete(this)
        resolve({ code, signal })
      })
    })
  }

  /** True until the process has exited. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** How many lines of stdout match `pattern`. */
  count(pattern: RegExp): number {
    return this.stdout.split('\n').filter((line) => pattern.test(line)).length
  }

  /**
   * Waits until a stdout line at or after character `from` matches `pattern`;
   * resolves with the match and where the line ends. Fails when the process
   * exits first or after `timeoutMs`.
   */
  async waitFor(pattern: RegExp, { from = 0, timeoutMs = DEADLINE_MS } = {}): Promise<{ match: RegExpMatchArray; end: number }> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const text = this.stdout.slice(from)
      let offset = from
      for (const line of text.split('\n')) {
        const m = line.match(pattern)
        // Only whole lines: the last piece may still be arriving.
        if (m !== null && offset + line.length < this.stdout.length) return { match: m, end: offset + line.length + 1 }
        offset += line.length + 1
      }
      if (!this.alive) throw new Error(`${this.describe()} exited before printing ${pattern}\n${this.output()}`)
      if (Date.now() > deadline) throw new Error(`${this.describe()} did not print ${pattern} within ${timeoutMs} ms\n${this.output()}`)
      await sleep(25)
    }
  }

  /**
   * Sends `signal` and waits for the exit. A process still running after
   * `timeoutMs` is killed with SIGKILL and the call fails.
   */
  async kill(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = DEADLINE_MS): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.child.kill(signal)
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), timeoutMs) })
    const result = await Promise.race([this.exited, late]).finally(() => clearTimeout(timer))
    if (result !== 'late') return result
    this.child.kill('SIGKILL')
    await this.exited
    throw new Error(`${this.describe()} did not exit within ${timeoutMs} ms of ${signal}\n${this.output()}`)
  }

  /** The command, for messages. */
  describe(): string {
    return `left ${this.args.join(' ')} (in ${this.cwd})`
  }

  /** What it printed, for failure messages. */
  output(): string {
    return `--- stdout:\n${this.stdout.slice(-4000)}\n--- stderr:\n${this.stderr.slice(-2000)}`
  }
}

/** Starts `left ...args` in `cwd` without waiting for it. */
export function spawnLeft(cwd: string, args: readonly string[], user?: RunAs): LeftProcess {
  return new LeftProcess(cwd, args, user)
}

/** Another user to run a command as (tests that need permissions to bite run as nobody when they are root). */
export interface RunAs {
  readonly uid: number
  readonly gid: number
}

/** Starts `left serve --listen <peer.address>` and waits until it listens. */
export async function serve(peer: Peer): Promise<LeftProcess> {
  const p = spawnLeft(peer.dir, ['serve', '--listen', peer.address])
  await p.waitFor(/serving .* on /)
  return p
}

/** Starts `left watch ...args` and waits until it watches. */
export async function watch(peer: Peer, args: readonly string[] = [], user?: RunAs): Promise<LeftProcess> {
  const p = spawnLeft(peer.dir, ['watch', ...args], user)
  await p.waitFor(/watching .* on /)
  return p
}

/** `left watch` args for `peer`: listen on its address and dial every other peer. */
export function watchArgs(peer: Peer, all: readonly Peer[]): string[] {
  return ['--listen', peer.address, '--peers', all.filter((p) => p !== peer).map((p) => p.address).join(',')]
}

/** SIGKILLs every child process still running; for `finally` blocks. */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill('SIGKILL')))
}

/**
 * Makes a conflict between two watching peers: with `a` paused, each
 * commits its own version of `path`, then `a` resumes and the merge keeps
 * both. Committed with leftOk, not commitOk: a watcher may commit the
 * change before `left commit` does.
 */
export async function conflictWhilePaused(a: Peer, b: Peer, path: string, ours: { text: string; message: string }, theirs: { text: string; message: string }): Promise<void> {
  await leftOk(a.dir, ['pause'])
  await writeFile(join(a.share, path), ours.text)
  await leftOk(a.dir, ['commit', '-m', ours.message])
  await writeFile(join(b.share, path), theirs.text)
  await leftOk(b.dir, ['commit', '-m', theirs.message])
  await leftOk(a.dir, ['resume'])
}

/**
 * Waits until the folders are byte-identical (paths, types, contents, exec
 * bits, link targets and file mtimes) and returns their description. Polls a
 * cheap listing first so big files are hashed only when it agrees. Fails
 * after `timeoutMs` with the paths that still differ.
 */
export async function waitForEqual(dirs: readonly string[], timeoutMs = DEADLINE_MS): Promise<PathInfo[]> {
  const deadline = Date.now() + timeoutMs
  let last: PathInfo[][] = []
  for (;;) {
    try {
      const quick = await Promise.all(dirs.map(listing))
      if (quick.every((q) => q === quick[0])) {
        last = await Promise.all(dirs.map((d) => describeTree(d, { mtimes: true })))
        const json = last.map((t) => JSON.stringify(t))
        if (json.every((j) => j === json[0])) return last[0]!
      }
    } catch {
      // A file renamed or removed while we looked: the folder is still moving.
    }
    if (Date.now() > deadline) {
      if (last.length === 0) last = await Promise.all(dirs.map((d) => describeTree(d, { mtimes: true })))
      throw new Error(`folders still differ after ${timeoutMs} ms:\n${differences(dirs, last)}`)
    }
    await sleep(200)
  }
}

/** Paths, types, sizes and mtimes of everything under `root`, as one string. */
async function listing(root: string): Promise<string> {
  const out: string[] = []
  async function walk(abs: string, rel: string): Promise<void> {
    for (const name of (await readdir(abs)).sort()) {
      const st = await lstat(join(abs, name))
      const r = `${rel}/${name}`
      out.push(`${r} ${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : `f ${st.size} ${Math.floor(st.mtimeMs)} ${st.mode & 0o100}`}`)
      if (st.isDirectory()) await walk(join(abs, name), r)
    }
  }
  await walk(root, '')
  return out.join('\n')
}

function differences(dirs: readonly string[], trees: readonly PathInfo[][]): string {
  const first = new Map(trees[0]!.map((p) => [p.path, JSON.stringify(p)]))
  const lines: string[] = []
  for (let i = 1; i < trees.length; i++) {
    const other = new Map(trees[i]!.map((p) => [p.path, JSON.stringify(p)]))
    for (const path of new Set([...first.keys(), ...other.keys()])) {
      if (first.get(path) !== other.get(path)) lines.push(`${dirs[0]} vs ${dirs[i]}: ${path}: ${first.get(path) ?? 'absent'} / ${other.get(path) ?? 'absent'}`)
    }
  }
  return lines.slice(0, 40).join('\n')
}

/** Total size in bytes of the files under `dir`, at any depth. */
export async function dirSize(dir: string): Promise<number> {
  const names = await readdir(dir, { recursive: true }).catch(() => [] as string[])
  const sizes = await Promise.all(names.map(async (f) => {
    const st = await stat(join(dir, f)).catch(() => undefined)
    return st?.isFile() ? st.size : 0
  }))
  return sizes.reduce((a, b) => a + b, 0)
}

/** One field of every commit in `peer`'s log, newest first (beside a running serve or watch too). */
export async function logField(peer: Peer, field: 'id' | 'message'): Promise<string[]> {
  return (JSON.parse(await leftOk(peer.dir, ['log', '--json'])) as Record<string, string>[]).map((e) => e[field]!)
}

/** Commit ids newest first. */
export function logIds(peer: Peer): Promise<string[]> {
  return logField(peer, 'id')
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** The bytes `left sync` says it received from its peer (`in sync with PEER (received N bytes, …)`), or NaN. */
export function syncReceived(out: string): number {
  return Number(/in sync with .* \(received (\d+) bytes/.exec(out)?.[1] ?? NaN)
}
