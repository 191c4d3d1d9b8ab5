/**
 * Benchmark plumbing: data generation, timing child processes with their peak
 * RSS (GNU time for one-shot commands, /proc VmHWM for long-running peers),
 * installing the comparison tools from Debian when they are missing, and
 * printing results as markdown tables.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { LEFT_BIN } from '../test/helpers/cli.js'
import { sleep, syncReceived } from '../test/helpers/peers.js'


export { writeCompressibleFile } from '../test/helpers/data.js'
export { sleep } from '../test/helpers/peers.js'

export const MiB = 1024 * 1024
export const GiB = 1024 * MiB

/** Makes sure a command exists, installing its Debian package when possible. Returns false if unavailable. */
export function ensureTool(command: string, pkg = command): boolean {
  if (which(command)) return true
  try {
    console.error(`bench: installing ${pkg} from Debian...`)
    execFileSync('apt-get', ['install', '-y', pkg], { stdio: 'ignore' })
  } catch {
    try {
      execFileSync('apt-get', ['update'], { stdio: 'ignore' })
      execFileSync('apt-get', ['install', '-y', pkg], { stdio: 'ignore' })
    } catch {
      console.error(`bench: could not install ${pkg}; its rows are skipped`)
    }
  }
  return which(command)
}

function which(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** What a timed command did. */
export interface Timed {
  readonly seconds: number
  /** Peak resident set size in bytes (GNU time: anonymous and file-backed pages). */
  readonly rss: number
  /** Peak anonymous resident memory in bytes (the process's own memory, without mapped file pages), sampled every 20 ms. */
  readonly anon: number
  readonly stdout: string
  readonly stderr: string
}

/** What `left sync` says it received: "in sync with HOST:PORT (received N bytes, sent M bytes)" → N. */
export function receivedBytes(t: Timed): number {
  return syncReceived(t.stdout)
}

/** Runs a command to completion under GNU time; throws on a non-zero exit. */
export async function timed(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Timed> {
  const started = process.hrtime.bigint()
  const child = spawn('/usr/bin/time', ['-f', '@@RSS %M', cmd, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let anon = 0
  const sampler = setInterval(() => {
    void anonOfChildren(child.pid!).then((a) => { anon = Math.max(anon, a) })
  }, 20)
  const { stdout, stderr, code } = await collectOutput(child)
  clearInterval(sampler)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const m = /@@RSS (\d+)/.exec(stderr)
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-500)}`)
  return { seconds, rss: m ? Number(m[1]) * 1024 : NaN, anon, stdout, stderr: stderr.replace(/@@RSS \d+\n?/, '') }
}

/** Runs the left CLI under GNU time. */
export function left(cwd: string, args: readonly string[]): Promise<Timed> {
  return timed(process.execPath, [LEFT_BIN, ...args], { cwd })
}

function collectOutput(child: ChildProcess): Promise<{ stdout: string; stderr: string; code: number | null }> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  return new Promise((resolve) => child.on('close', (code) => resolve({ stdout, stderr, code })))
}

/** A long-running process (a serving or watching peer) whose output we can wait on. */
export class Peer {
  readonly child: ChildProcess
  output = ''
  /** Peak anonymous resident memory seen so far, sampled every 50 ms. */
  peakAnon = 0
  private readonly sampler: NodeJS.Timeout

  constructor(cwd: string, args: readonly string[]) {
    this.child = spawn(process.execPath, [LEFT_BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stdout!.on('data', (d: Buffer) => { this.output += d.toString() })
    this.child.stderr!.on('data', (d: Buffer) => { this.output += d.toString() })
    this.sampler = setInterval(() => {
      void procField(this.child.pid!, 'RssAnon').then((a) => { if (a > this.peakAnon) this.peakAnon = a }, () => {})
    }, 50)
    this.child.once('close', () => clearInterval(this.sampler))
  }

  /** Peak RSS and peak own memory so far, for fmt.mem. */
  async memory(): Promise<{ rss: number; anon: number }> {
    return { rss: await this.peakRss(), anon: this.peakAnon }
  }

  /** Waits until the output matches `re`. */
  async waitFor(re: RegExp, timeoutMs = 600_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!re.test(this.output)) {
      if (this.child.exitCode !== null) throw new Error(`peer exited: ${this.output.slice(-500)}`)
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}: ${this.output.slice(-500)}`)
      await sleep(10)
    }
  }

  /** Peak RSS so far, from /proc (anonymous and file-backed pages). */
  async peakRss(): Promise<number> {
    return procField(this.child.pid!, 'VmHWM')
  }

  /** CPU seconds used so far (user + system), from /proc. */
  async cpuSeconds(): Promise<number> {
    const fields = (await readFile(`/proc/${this.child.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return
    const closed = new Promise((r) => this.child.once('close', r))
    this.child.kill('SIGTERM')
    await closed
  }
}

/**
 * Starts an rsync daemon on 127.0.0.1:`port` whose module `bench` writes
 * into `dest` (no chroot, no encryption); the caller kills it when done.
 */
export async function rsyncDaemon(base: string, dest: string, port: number): Promise<ChildProcess> {
  const conf = join(base, `rsyncd-${port}.conf`)
  await writeFile(conf, `use chroot = false\nuid = root\ngid = root\n[bench]\npath = ${dest}\nread only = false\n`)
  const daemon = spawn('rsync', ['--daemon', '--no-detach', `--config=${conf}`, `--port=${port}`, '--address=127.0.0.1'], { stdio: 'ignore' })
  await sleep(500)
  return daemon
}

/** RssAnon of the children of `pid` (the command GNU time runs), summed; 0 when gone. */
async function anonOfChildren(pid: number): Promise<number> {
  try {
    const kids = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean).map(Number)
    const values = await Promise.all(kids.map((k) => procField(k, 'RssAnon').catch(() => 0)))
    return values.reduce((a, b) => a + (Number.isNaN(b) ? 0 : b), 0)
  } catch {
    return 0
  }
}

async function procField(pid: number, name: string): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = new RegExp(`${name}:\\s+(\\d+) kB`).exec(text)
  return m ? Number(m[1]) * 1024 : NaN
}

/** Writes `size` bytes of random data (incompressible), 16 MiB at a time. */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  const fh = await open(path, 'w')
  const buf = Buffer.allocUnsafe(16 * MiB)
  try {
    for (let off = 0; off < size; off += buf.length) {
      const n = Math.min(buf.length, size - off)
      randomFillSync(buf, 0, n)
      await fh.write(buf, 0, n)
    }
  } finally {
    await fh.close()
  }
}

/** 10,000 files of 4–64 KiB in nested dirs (100 dirs in 10 groups). */
export async function writeSmallFiles(root: string, count = 10_000): Promise<number> {
  let total = 0
  for (let i = 0; i < count; i++) {
    const size = 4096 + ((i * 7919) % (60 * 1024))
    const dir = join(root, `group-${i % 10}`, `dir-${i % 100}`)
    if (i < 100) await mkdir(dir, { recursive: true })
    const buf = Buffer.allocUnsafe(size)
    randomFillSync(buf)
    const fh = await open(join(dir, `file-${i}.bin`), 'w')
    await fh.write(buf)
    await fh.close()
    total += size
  }
  return total
}

/** Raw SHA-256 throughput of node:crypto over `bytes`, in bytes per second. */
export function sha256Speed(bytes = GiB): number {
  const buf = Buffer.allocUnsafe(64 * MiB)
  randomFillSync(buf)
  const started = process.hrtime.bigint()
  const h = createHash('sha256')
  for (let done = 0; done < bytes; done += buf.length) h.update(buf)
  h.digest()
  return bytes / (Number(process.hrtime.bigint() - started) / 1e9)
}

/** Total size of the files under `dir`. */
export async function dirSize(dir: string): Promise<number> {
  let total = 0
  for (const name of await readdir(dir, { recursive: true })) {
    const s = await stat(join(dir, name)).catch(() => undefined)
    if (s?.isFile()) total += s.size
  }
  return total
}

/**
 * Waits until each of `copies` matches `source`; returns the seconds from
 * `started` until the last one did. A copy counts from the moment its size
 * and mtime match (LEFT, rsync and Syncthing all rename a finished file
 * into place); contents are compared once every copy has arrived, so that
 * this process's own hashing (two reads of a 200 MB file per copy) takes no
 * CPU from the peers still at work. A copy whose content differs is waited
 * for again.
 */
export async function propagation(source: string, copies: readonly string[], started: bigint): Promise<number> {
  const want = await stat(source)
  const arrived = new Map<string, bigint>()
  const pending = new Set(copies)
  let last = started
  const deadline = Date.now() + 600_000
  while (pending.size > 0) {
    for (const p of pending) {
      const s = await stat(p).catch(() => undefined)
      if (s !== undefined && s.size === want.size && Math.floor(s.mtimeMs) === Math.floor(want.mtimeMs)) {
        if (!arrived.has(p)) arrived.set(p, process.hrtime.bigint())
      } else arrived.delete(p)
    }
    if (arrived.size === pending.size) {
      for (const [p, at] of arrived) {
        if (!(await sameFile(source, p))) continue
        pending.delete(p)
        if (at > last) last = at
      }
      arrived.clear()
    }
    if (Date.now() > deadline) throw new Error(`${source} did not reach ${[...pending].join(', ')}`)
    await sleep(5)
  }
  return Number(last - started) / 1e9
}

/** True when two files have the same bytes (compared by SHA-256). */
export async function sameFile(a: string, b: string): Promise<boolean> {
  if (!existsSync(a) || !existsSync(b)) return false
  const [sa, sb] = await Promise.all([stat(a), stat(b)])
  if (sa.size !== sb.size) return false
  return (await fileHash(a)) === (await fileHash(b))
}

async function fileHash(path: string): Promise<string> {
  const h = createHash('sha256')
  const fh = await open(path)
  try {
    for await (const piece of fh.createReadStream({ highWaterMark: 4 * MiB })) h.update(piece as Buffer)
  } finally {
    await fh.close().catch(() => {})
  }
  return h.digest('hex')
}

/** A fresh scratch directory under `base`. */
export async function scratch(base: string, name: string): Promise<string> {
  const dir = join(base, name)
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  return dir
}

/** Prints a markdown table (the format docs/benchmarks.md keeps). */
export function printTable(title: string, header: readonly string[], rows: readonly (readonly string[])[]): void {
  console.log(`\n### ${title}\n`)
  console.log(`| ${header.join(' | ')} |`)
  console.log(`|${header.map(() => '---').join('|')}|`)
  for (const r of rows) console.log(`| ${r.join(' | ')} |`)
}

export const fmt = {
  s: (x: number): string => `${x.toFixed(2)} s`,
  mb: (x: number): string => `${(x / 1e6).toFixed(1)} MB`,
  /** Peak RSS, then in parentheses the peak of the process's own (anonymous) memory. */
  mem: (t: { rss: number; anon: number }): string => `${(t.rss / 1e6).toFixed(0)} MB (own ${(t.anon / 1e6).toFixed(0)} MB)`,
  kb: (x: number): string => `${(x / 1e3).toFixed(1)} KB`,
  rate: (bytes: number, s: number): string => `${(bytes / s / 1e6).toFixed(0)} MB/s`,
  ratio: (a: number, b: number): string => `${(a / b).toFixed(2)}×`
}

/** Progress of the benchmark itself, on stderr so the tables on stdout stay clean. */
export function step(what: string): void {
  process.stderr.write(`bench ${new Date().toISOString().slice(11, 19)}: ${what}\n`)
}
