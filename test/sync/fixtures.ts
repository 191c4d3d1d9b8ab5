/**
 * Shared setup for the sync tests: real repos with a committed tree, stores
 * inspected object by object, block sources backed by a real store, a log
 * capture, and the raw TLS options a hostile peer needs to speak to LEFT.
 */
import { after, before } from 'node:test'
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as tls from 'node:tls'
import type { CID } from 'multiformats/cid'
import { MissingObjectError } from '../../src/errors.js'
import { RAW, objectLinks, verifyBytes } from '../../src/object/index.js'
import { fsck, type FsckReport } from '../../src/repo/maintenance.js'
import { Repo, storeOf } from '../../src/repo/repo.js'
import type { Store } from '../../src/store/store.js'
import { type BlockSource, fetchClosure } from '../../src/sync/fetch.js'
import type { Session } from '../../src/sync/session.js'
import { type Listener, PSK_IDENTITY, derivePsk, listen } from '../../src/sync/tls.js'
import { tempDir } from '../helpers/cli.js'
import { seededBytes } from '../helpers/data.js'

/** The folder key the honest peers share. */
export const KEY = 'sync-test-folder-key-0123456789'

/** LEFT's TLS settings (tls.ts keeps its own copy private): TLS 1.3, SHA-256 suites only. */
export const TLS_OPTIONS = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256'
} as const

/** Client options that authenticate with `key` the way tls.ts does. */
export function pskClientOptions(key: string): tls.ConnectionOptions {
  const psk = derivePsk(key)
  return { ...TLS_OPTIONS, checkServerIdentity: () => undefined, pskCallback: () => ({ psk, identity: PSK_IDENTITY }) }
}

/** Server options that accept exactly the holders of `key`. */
export function pskServerOptions(key: string): tls.TlsOptions {
  const psk = derivePsk(key)
  return { ...TLS_OPTIONS, pskCallback: (_socket, identity) => (identity === PSK_IDENTITY ? psk : null) }
}

/**
 * Fills a share folder with a little of everything: nested dirs, an empty
 * dir, an empty file, an exec file, a symlink, and two multi-chunk files (so
 * there are file nodes as well as raw chunks). Every file's content is
 * distinct, so no object is linked from two places.
 */
export async function fillShare(share: string, seed: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await mkdir(join(share, `d${i}`, 'sub'), { recursive: true })
    for (let j = 0; j < 4; j++) await writeFile(join(share, `d${i}`, `f${j}.txt`), `${seed} file ${i}/${j}\n`)
    await writeFile(join(share, `d${i}`, 'sub', 'deep.txt'), `${seed} deep ${i}\n`)
  }
  await mkdir(join(share, 'empty-dir'))
  await writeFile(join(share, 'empty-file'), '')
  await writeFile(join(share, 'run.sh'), `#!/bin/sh\necho ${seed}\n`)
  await chmod(join(share, 'run.sh'), 0o755)
  await writeFile(join(share, 'big.bin'), seededBytes(`${seed}-big`, 700_000))
  await writeFile(join(share, 'd1', 'media.bin'), seededBytes(`${seed}-media`, 300_000))
  await symlink('d0/f0.txt', join(share, 'link'))
}

/** A new, empty LEFT folder at `dir` (created if needed). */
export async function initRepo(dir: string, key = KEY): Promise<Repo> {
  await mkdir(dir, { recursive: true })
  return Repo.init(dir, { key })
}

/** Real repos for one describe block: made in one temp directory, closed and removed after it. */
export interface SuiteRepos {
  /** A new repo named `name` (unique within the block). */
  repo(name: string): Promise<Repo>
  /** Copies the closure of `head` from `from` into `to`'s store, as a sync's fetch does. */
  fetch(from: Repo, to: Repo, head: CID): Promise<void>
  /** `fetch`, then integrate it into `to`: what a sync does with a peer's head. */
  bring(from: Repo, to: Repo, head: CID): ReturnType<Repo['integrate']>
}

/** Registers the before/after hooks of SuiteRepos in the calling describe block. */
export function suiteRepos(prefix: string): SuiteRepos {
  let root = ''
  let cleanup: () => Promise<void> = async () => {}
  const repos: Repo[] = []
  before(async () => ({ dir: root, cleanup } = await tempDir(prefix)))
  after(async () => {
    for (const r of repos) await r.close().catch(() => {})
    await cleanup()
  })
  const fetch = async (from: Repo, to: Repo, head: CID): Promise<void> => {
    await fetchClosure(head, to.objects, new StoreSource(storeOf(from)))
  }
  return {
    async repo(name) {
      const repo = await initRepo(join(root, name))
      repos.push(repo)
      return repo
    },
    fetch,
    async bring(from, to, head) {
      await fetch(from, to, head)
      return to.integrate(head)
    }
  }
}

/** A LEFT folder at `dir` with one commit of `fillShare(seed)`. */
export async function repoWithCommit(dir: string, seed: string, key = KEY): Promise<{ repo: Repo; head: CID }> {
  const repo = await initRepo(dir, key)
  try {
    await fillShare(repo.share, seed)
    const result = await repo.commit('fixture')
    if (result === undefined) throw new Error('fixture commit made nothing')
    return { repo, head: result.cid }
  } catch (err) {
    await repo.close()
    throw err
  }
}

/** Number of objects in the object space (staging not included). */
export async function countObjects(store: Store): Promise<number> {
  let n = 0
  for await (const _ of store.objectCids()) n++
  return n
}

/**
 * Checks every object in the object space, reachable or not: its bytes hash
 * to its CID and everything it links to is stored too (the store's closure
 * invariant). Throws on the first violation; returns the object count.
 */
export async function assertStoreWhole(store: Store): Promise<number> {
  let n = 0
  for await (const cid of store.objectCids()) {
    n++
    const bytes = await store.get(cid)
    if (bytes === undefined || !verifyBytes(cid, bytes)) throw new Error(`stored object ${cid} does not match its CID`)
    for (const link of objectLinks(cid, bytes)) {
      // Content is fetched apart and may be absent (store/interface.ts); fsck says where it must not be.
      if (link.code === RAW) continue
      if (!(await store.has(link))) throw new Error(`stored object ${cid} links to ${link}, which is not stored`)
    }
  }
  return n
}

/** Points HEAD at `head` and runs fsck, which walks from the refs. */
export async function fsckFrom(store: Store, head: CID): Promise<FsckReport> {
  await store.write({ refs: { HEAD: head } })
  return fsck(store)
}

/** How a StoreSource misbehaves. */
export interface SourceOptions {
  /** Fail every request after this many have succeeded, as a dropped connection would. */
  readonly failAfter?: number
  /** Replace the bytes sent for a CID. */
  readonly tamper?: (cid: CID, bytes: Uint8Array) => Uint8Array
  /** Answer after a few turns of the event loop (varying per CID), so answers arrive out of order. */
  readonly jitter?: boolean
}

/** A BlockSource that serves from a real store and records what was asked. */
export class StoreSource implements BlockSource {
  /** Every request, in order (CID strings). */
  readonly requests: string[] = []
  /** Requests answered with bytes. */
  readonly delivered: string[] = []
  /** Answers not yet settled. */
  readonly pending = new Set<Promise<unknown>>()

  constructor(private readonly store: Store, private readonly options: SourceOptions = {}) {}

  request(cid: CID): Promise<Uint8Array> {
    const key = cid.toString()
    this.requests.push(key)
    const p = this.answer(cid, key)
    this.pending.add(p)
    void p.then(() => this.pending.delete(p), () => this.pending.delete(p))
    return p
  }

  /** Resolves once every answer handed out so far has settled. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
  }

  private granted = 0

  private async answer(cid: CID, key: string): Promise<Uint8Array> {
    // Decided at request time, so exactly `failAfter` requests get bytes.
    if (this.options.failAfter !== undefined && this.granted >= this.options.failAfter) throw new Error('connection dropped')
    this.granted++
    if (this.options.jitter === true) {
      const turns = cid.multihash.digest[0]! % 5
      for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve))
    }
    const bytes = await this.store.get(cid)
    if (bytes === undefined) throw new MissingObjectError(key)
    this.delivered.push(key)
    return this.options.tamper?.(cid, bytes) ?? bytes
  }
}

/** Collects log lines and lets a test wait for one that matches. */
export class LogCapture {
  readonly lines: string[] = []
  private readonly waiters: Array<{ re: RegExp; resolve: (line: string) => void }> = []

  /** Pass this as a `log` option. */
  readonly log = (line: string): void => {
    this.lines.push(line)
    for (const w of [...this.waiters]) {
      if (w.re.test(line)) {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        w.resolve(line)
      }
    }
  }

  /** Resolves with the first line (already logged or still to come) matching `re`. */
  waitFor(re: RegExp): Promise<string> {
    const seen = this.lines.find((l) => re.test(l))
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve) => this.waiters.push({ re, resolve }))
  }
}

/** Escapes text for use inside a RegExp. */
export function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** A real repo with one commit, served by a real TLS listener on 127.0.0.1. */
export interface ServedRepo {
  readonly root: string
  readonly server: Repo
  readonly head: CID
  /** Objects in the server's store at the start. */
  readonly total: number
  readonly listener: Listener
  readonly logs: LogCapture
  /** Every session the listener accepted, in order. */
  readonly sessions: Session[]
  /** Closes the sessions, the listener and the repo, and removes the temp dir. */
  close(): Promise<void>
}

/** Sets up a ServedRepo; `onSession` runs for each accepted session after it is recorded. */
export async function serveRepo(prefix: string, timeoutMs: number, onSession?: (session: Session) => void): Promise<ServedRepo> {
  const { dir: root, cleanup } = await tempDir(prefix)
  const { repo: server, head } = await repoWithCommit(join(root, 'server'), prefix)
  const total = await countObjects(storeOf(server))
  const logs = new LogCapture()
  const sessions: Session[] = []
  const listener = await listen({
    address: { host: '127.0.0.1', port: 0 },
    key: KEY,
    session: { store: storeOf(server), peerId: server.config.peerId, head: () => server.head(), log: logs.log, timeoutMs },
    log: logs.log,
    onSession: (session) => {
      sessions.push(session)
      onSession?.(session)
    }
  })
  return {
    root, server, head, total, listener, logs, sessions,
    async close() {
      await Promise.all(sessions.map((s) => s.close()))
      await listener.close()
      await server.close()
      await cleanup()
    }
  }
}
