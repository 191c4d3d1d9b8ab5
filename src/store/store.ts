/**
 * The object store: the only module that imports `level`. It owns two
 * LevelDBs under `.left/store`. `index/` holds these sublevels:
 *
 *   o  objects, keyed by CID bytes. A structure node (dag-cbor) is stored
 *      here as its exact bytes; a raw chunk is stored as an 8-byte big-endian
 *      sequence number, its bytes living in `chunks/` under that number
 *   c  commit index, keyed by CID string (for prefix lookup and `log`)
 *   r  refs: HEAD, and reflog/<time>-<suffix> for every HEAD it has had
 *   s  stat cache: share-relative path -> StatEntry (git's index, in spirit),
 *      and a directory's path and a slash ('' for the top) -> DirStat
 *   p  staging: structure nodes fetched from a peer whose children are not all
 *      stored yet (see sync/fetch.ts)
 *   t  thin commits, keyed by CID bytes: their content need not be here
 *   m  counters: `nextSeq`, the next chunk sequence number; and `format`,
 *      the object format of everything stored (object/codec.ts)
 *
 * and `chunks/` holds one sublevel, d: chunk bytes keyed by sequence number.
 *
 * Invariant, kept by every writer: a structure node is in `o` only when every
 * structure node it links to is in `o` too, and a raw object's data is in
 * `d`. Content below a commit is in `o` too unless that commit is in `t`
 * (interface.ts says why). So HEAD always points at a complete snapshot, and
 * a kill -9 at any instant leaves a store that fsck finds whole.
 *
 * Why chunk data lives apart, under a counter: CIDs are random, so a big
 * commit keyed by CID makes LevelDB merge every new table with the old ones
 * level after level, rewriting each chunk many times. Keys that only grow,
 * in a database of their own, produce tables that never overlap, which
 * LevelDB moves down without rewriting; only the small index entries are
 * merged. Data is written before the index entries that point at it, and
 * deleted after them, so a crash can only leave unreferenced data, which gc
 * sweeps.
 *
 * The store's logic runs on any abstract-level database: `Store.open` puts
 * it on LevelDB (classic-level), and unit tests put it on memory-level with
 * `Store.openOn`, so one conformance suite holds both to the contract in
 * interface.ts.
 *
 * Power loss, unlike kill -9, can drop writes the OS had not yet put on
 * disk, and the two databases reach the disk independently. So chunk data is
 * written with sync before any index entry that points at it, an index
 * deletion is synced before the data it pointed at goes, and every write
 * that moves a ref is synced, which makes every earlier index write durable
 * with it (LevelDB's guarantee for a synchronous write). A power cut can lose
 * the last commits, never keep a ref or an entry whose objects are gone.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { AbstractBatchOptions, AbstractLevel, AbstractSublevel } from 'abstract-level'
import { Level } from 'level'
import type { CID } from 'multiformats/cid'
import { LeftError, StoreDamagedError, StoreFormatError, StoreLockedError } from '../errors.js'
import { type Block, OBJECT_FORMAT, RAW, cidFromBytes, parentPath } from '../object/index.js'
import type { DirStat, ObjectStore, StatDir, StatEntry, StoreWrite } from './interface.js'

type Bytes = Uint8Array
/** Any abstract-level database with binary keys and values (classic-level and memory-level both are). */
type Format = string | Buffer | Uint8Array
type Db = AbstractLevel<Format, Bytes, Bytes>
type Sub = AbstractSublevel<Db, Format, Bytes, Bytes>

/** The two databases a store runs on (see the module summary). */
export interface StoreLevels {
  /** Objects, commit index, refs, caches, counters. */
  readonly index: Db
  /** Chunk bytes under sequence numbers. */
  readonly chunks: Db
  /** Where they live, for messages. */
  readonly path: string
}

/**
 * Write options for a synchronous (fsynced) LevelDB write. classic-level
 * honours `sync`; abstract-level passes unknown options through, though its types do not
 * list this one.
 */
const SYNC: AbstractBatchOptions<Bytes, Bytes> & { readonly sync: boolean } = { sync: true }

const enc = new TextEncoder()
// Keys are paths: a name may begin with U+FEFF, which a decoder that drops
// a byte order mark would drop from it.
const dec = new TextDecoder('utf-8', { ignoreBOM: true })

/**
 * Refuses a store of another object format, and marks a new one with ours.
 * A store with objects but no mark predates the mark: format 1.
 */
async function checkFormat(objects: Sub, meta: Sub, path: string, olderFormat: boolean): Promise<number> {
  const mark = await meta.get(FORMAT)
  let found = mark === undefined ? undefined : Number(dec.decode(mark))
  if (found === undefined) {
    const first = await objects.keys({ limit: 1 }).all()
    if (first.length > 0) found = 1
  }
  if (found === undefined) {
    await meta.put(FORMAT, enc.encode(String(OBJECT_FORMAT)))
    return OBJECT_FORMAT
  }
  if (found !== OBJECT_FORMAT && !(olderFormat && found < OBJECT_FORMAT)) throw new StoreFormatError(path, found, OBJECT_FORMAT)
  return found
}

/** Options for opening a store. */
export interface StoreOptions {
  /**
   * Create the store when it does not exist (`left init`). Without it, a
   * store whose LevelDB `CURRENT` file is gone is refused, never replaced by
   * an empty one: that would lose every version and reuse chunk keys.
   */
  readonly create?: boolean
  /** LevelDB write buffer in bytes; larger means fewer compactions during big commits. */
  readonly writeBufferSize?: number
  /** Open a store of an older object format too (`left migrate`); see `format`. */
  readonly olderFormat?: boolean
}

/** The content-addressed store. Open with `Store.open` (LevelDB) or `Store.openOn`. */
export class Store implements ObjectStore {
  private constructor(
    private readonly db: Db,
    private readonly chunks: Db,
    private readonly objects: Sub,
    private readonly commitIndex: Sub,
    private readonly refs: Sub,
    private readonly stats: Sub,
    private readonly staging: Sub,
    private readonly thin: Sub,
    /** Store-wide counters: `nextSeq`. */
    private readonly meta: Sub,
    private readonly data: Sub,
    /** The next free key in `d`. */
    private nextSeq: bigint,
    /** Filesystem path of the LevelDB directory. */
    readonly path: string,
    /** The object format of what is stored: OBJECT_FORMAT, unless opened with `olderFormat`. */
    public format: number
  ) {}

  /**
   * Opens the store in the directory `path`: the index database in
   * `path/index`, chunk data in `path/chunks`; with `create`, makes it first
   * if need be. Throws StoreLockedError when another process holds it and
   * StoreDamagedError when either database is missing.
   */
  static async open(path: string, options: StoreOptions = {}): Promise<Store> {
    if (options.create === true) await mkdir(path, { recursive: true })
    const index = await openLevel(join(path, 'index'), path, options)
    let chunks: Db
    try {
      chunks = await openLevel(join(path, 'chunks'), path, options)
    } catch (err) {
      await index.close()
      throw err
    }
    return Store.openOn({ index, chunks, path }, options)
  }

  /**
   * Runs the store on two abstract-level databases, opening them if they are
   * not open yet. For tests (memory-level) and for `open`.
   */
  static async openOn(levels: StoreLevels, options: Pick<StoreOptions, 'olderFormat'> = {}): Promise<Store> {
    const { index: db, chunks, path } = levels
    await db.open()
    await chunks.open()
    const sub = (name: string): Sub => db.sublevel<Bytes, Bytes>(name, { keyEncoding: 'view', valueEncoding: 'view' })
    const data = chunks.sublevel<Bytes, Bytes>('d', { keyEncoding: 'view', valueEncoding: 'view' })
    const meta = sub('m')
    // The next chunk key is past both the last chunk stored and the last one
    // the index ever handed out, so a key is never used twice even when the
    // chunk database lost its newest tables.
    let nextSeq = 0n
    for await (const k of data.keys({ reverse: true, limit: 1 })) nextSeq = seqOf(k) + 1n
    const high = await meta.get(NEXT_SEQ)
    if (high !== undefined && seqOf(high) > nextSeq) nextSeq = seqOf(high)
    let format: number
    try {
      format = await checkFormat(sub('o'), meta, path, options.olderFormat === true)
    } catch (err) {
      await db.close()
      await chunks.close()
      throw err
    }
    return new Store(db, chunks, sub('o'), sub('c'), sub('r'), sub('s'), sub('p'), sub('t'), meta, data, nextSeq, path, format)
  }

  /** Closes the database; the store is unusable afterwards. */
  async close(): Promise<void> {
    await this.db.close()
    await this.chunks.close()
  }

  /** True when the object is stored: for a node, with every structure node below it. */
  async has(cid: CID): Promise<boolean> {
    return (await this.objects.get(cid.bytes)) !== undefined
  }

  /** `has` for many CIDs in one round trip to LevelDB. */
  async hasMany(cids: readonly CID[]): Promise<boolean[]> {
    if (cids.length === 0) return []
    const values = await this.objects.getMany(cids.map((c) => c.bytes))
    return values.map((v) => v !== undefined)
  }

  /** The object's bytes, or undefined when it is not stored. */
  async get(cid: CID): Promise<Bytes | undefined> {
    const value = await this.objects.get(cid.bytes)
    if (value === undefined || cid.code !== RAW) return value ?? undefined
    return (await this.data.get(value)) ?? undefined
  }

  async getMany(cids: readonly CID[]): Promise<Array<Uint8Array | undefined>> {
    if (cids.length === 0) return []
    const values = await this.objects.getMany(cids.map((c) => c.bytes))
    const raw: number[] = []
    cids.forEach((c, i) => { if (c.code === RAW && values[i] !== undefined) raw.push(i) })
    const data = raw.length === 0 ? [] : await this.data.getMany(raw.map((i) => values[i]!))
    raw.forEach((i, j) => { values[i] = data[j] })
    return values.map((v) => v ?? undefined)
  }

  /** Applies one write (see StoreWrite for what is atomic). */
  async write(w: StoreWrite): Promise<void> {
    const thinIfNew = w.thinIfNew ?? []
    const stored = thinIfNew.length === 0 ? [] : await this.objects.getMany(thinIfNew.map((c) => c.bytes))
    const thin = [...(w.thin ?? []), ...thinIfNew.filter((_, i) => stored[i] === undefined)]
    const data: Array<{ type: 'put'; key: Bytes; value: Bytes }> = []
    const objects: Array<[Bytes, Bytes]> = []
    for (const b of w.blocks ?? []) {
      if (b.cid.code === RAW) {
        const key = seqKey(this.nextSeq++)
        data.push({ type: 'put', key, value: b.bytes })
        objects.push([b.cid.bytes, key])
      } else objects.push([b.cid.bytes, b.bytes])
    }
    // Chunk data lands first, and durably: an index entry never points at
    // missing data, even after a power cut. A crash in between leaves only
    // unreferenced data, which gc sweeps.
    if (data.length > 0) await this.data.batch(data, SYNC)
    for (const dir of w.statUnder ?? []) await this.stats.clear(dir === '' ? {} : { gte: enc.encode(dir + '/'), lt: enc.encode(dir + AFTER_SLASH) })
    const batch = this.db.batch()
    for (const [key, value] of objects) batch.put(key, value, { sublevel: this.objects })
    for (const c of w.commits ?? []) batch.put(enc.encode(c.toString()), new Uint8Array(0), { sublevel: this.commitIndex })
    for (const [name, cid] of Object.entries(w.refs ?? {})) {
      if (cid === null) batch.del(enc.encode(name), { sublevel: this.refs })
      else batch.put(enc.encode(name), cid.bytes, { sublevel: this.refs })
    }
    // A file entry that changes makes its directory's DirStat stale; a
    // DirStat set in this same write was made after it, so it goes last.
    const staleDirs = new Set<string>()
    for (const [path, entry] of w.stat ?? []) {
      staleDirs.add(parentPath(path))
      if (entry === null) batch.del(enc.encode(path), { sublevel: this.stats })
      else batch.put(enc.encode(path), enc.encode(JSON.stringify(entry)), { sublevel: this.stats })
    }
    for (const dir of w.statUnder ?? []) if (dir !== '') staleDirs.add(parentPath(dir))
    for (const dir of staleDirs) batch.del(enc.encode(dirStatKey(dir)), { sublevel: this.stats })
    for (const [dir, entry] of w.dirStat ?? []) {
      if (entry === null) batch.del(enc.encode(dirStatKey(dir)), { sublevel: this.stats })
      else batch.put(enc.encode(dirStatKey(dir)), enc.encode(JSON.stringify(entry)), { sublevel: this.stats })
    }
    for (const c of w.unstage ?? []) batch.del(c.bytes, { sublevel: this.staging })
    for (const c of thin) batch.put(c.bytes, new Uint8Array(0), { sublevel: this.thin })
    for (const c of w.unthin ?? []) batch.del(c.bytes, { sublevel: this.thin })
    if (data.length > 0) batch.put(NEXT_SEQ, seqKey(this.nextSeq), { sublevel: this.meta })
    if (w.format !== undefined) batch.put(FORMAT, enc.encode(String(w.format)), { sublevel: this.meta })
    // A ref that survives a power cut must find everything below it.
    await batch.write(w.refs !== undefined || w.format !== undefined ? SYNC : {})
    if (w.format !== undefined) this.format = w.format
  }

  /** Stores blocks whose links are all stored already (chunks, bottom-up nodes). */
  async putBlocks(blocks: readonly Block[]): Promise<void> {
    if (blocks.length > 0) await this.write({ blocks })
  }

  /** The CID a ref points at, or undefined. */
  async getRef(name: string): Promise<CID | undefined> {
    const v = await this.refs.get(enc.encode(name))
    return v === undefined ? undefined : cidFromBytes(v)
  }

  /** All refs whose names start with `prefix`, in name order. */
  async listRefs(prefix = ''): Promise<Array<[string, CID]>> {
    const out: Array<[string, CID]> = []
    const gte = enc.encode(prefix)
    const lt = enc.encode(prefix + '\uffff')
    for await (const [k, v] of this.refs.iterator({ gte, lt })) {
      const cid = cidFromBytes(v)
      if (cid !== undefined) out.push([dec.decode(k), cid])
    }
    return out
  }

  /** Commit CID strings that start with `prefix` (at most `limit`). */
  async findCommits(prefix: string, limit = 2): Promise<string[]> {
    const out: string[] = []
    const gte = enc.encode(prefix)
    const lt = enc.encode(prefix + '\uffff')
    for await (const k of this.commitIndex.keys({ gte, lt, limit })) out.push(dec.decode(k))
    return out
  }

  /** The whole stat cache, loaded at once: one sequential scan beats many gets. */
  async loadStatCache(): Promise<Map<string, StatEntry | DirStat>> {
    const out = new Map<string, StatEntry | DirStat>()
    for await (const [k, v] of this.stats.iterator()) {
      // A damaged cache entry only costs a re-read.
      const key = dec.decode(k)
      const text = dec.decode(v)
      const entry = key === '' || key.endsWith('/') ? parseDirStat(text) : parseStatEntry(text)
      if (entry !== undefined) out.set(key, entry)
    }
    return out
  }

  async statEntry(path: string): Promise<StatEntry | undefined> {
    // A directory's key ('' or ending in '/') is never a file's path.
    if (path === '' || path.endsWith('/')) return undefined
    const v = await this.stats.get(enc.encode(path))
    return v === undefined ? undefined : parseStatEntry(dec.decode(v))
  }

  /**
   * One directory's stat cache entries. Paths sort with a directory's
   * whole subtree together (`d/x/...` between `d/x.` and `d/x0`), so each
   * subdirectory met is skipped with one seek past its range: the cost
   * follows the directory's width, not the size of what is below it.
   */
  async statDir(dir: string): Promise<StatDir> {
    const prefix = dir === '' ? '' : dir + '/'
    const files = new Map<string, StatEntry>()
    const dirs = new Set<string>()
    let self: DirStat | undefined
    const start = enc.encode(prefix)
    const it = this.stats.iterator(dir === '' ? {} : { gte: start, lt: enc.encode(dir + AFTER_SLASH) })
    try {
      for (let next = await it.next(); next !== undefined; next = await it.next()) {
        // Only the name's bytes are decoded: a slice of the whole path would
        // keep the path alive as long as the name, for each file.
        const rest = dec.decode(next[0].subarray(start.length))
        if (rest === '') {
          self = parseDirStat(dec.decode(next[1]))
          continue
        }
        const slash = rest.indexOf('/')
        if (slash >= 0) {
          const name = rest.slice(0, slash)
          dirs.add(name)
          it.seek(enc.encode(prefix + name + AFTER_SLASH))
          continue
        }
        const entry = parseStatEntry(dec.decode(next[1]))
        if (entry !== undefined) files.set(rest, entry)
      }
    } finally {
      await it.close()
    }
    return self === undefined ? { files, dirs } : { files, dirs, self }
  }

  /** Keeps a fetched structure node until its children arrive (see sync/fetch.ts). */
  async stage(block: Block): Promise<void> {
    await this.staging.put(block.cid.bytes, block.bytes)
  }

  /** A staged node's bytes, or undefined. */
  async getStaged(cid: CID): Promise<Bytes | undefined> {
    return (await this.staging.get(cid.bytes)) ?? undefined
  }

  /** The commits recorded as thin, as CID strings. */
  async thinCommits(): Promise<Set<string>> {
    const out = new Set<string>()
    for await (const k of this.thin.keys()) {
      const cid = cidFromBytes(k)
      if (cid !== undefined) out.add(cid.toString())
    }
    return out
  }

  /** Every stored object CID, in key order (for gc and fsck). */
  async *objectCids(): AsyncGenerator<CID> {
    for await (const k of this.objects.keys()) {
      const cid = cidFromBytes(k)
      if (cid !== undefined) yield cid
    }
  }

  /**
   * Deletes objects (and their commit index rows and chunk data) in one
   * atomic batch, then drops chunk data no object points at (left by two
   * fetches storing the same chunk at once). Used by gc only.
   */
  async deleteObjects(cids: readonly CID[]): Promise<void> {
    const batch = this.db.batch()
    for (const c of cids) {
      batch.del(c.bytes, { sublevel: this.objects })
      batch.del(enc.encode(c.toString()), { sublevel: this.commitIndex })
      batch.del(c.bytes, { sublevel: this.thin })
    }
    // The index goes first, durably, so no entry is ever left pointing at
    // deleted data; the data it pointed at is swept just below.
    await batch.write(SYNC)
    const live = new Set<bigint>()
    for await (const [k, v] of this.objects.iterator()) if (cidFromBytes(k)?.code === RAW) live.add(seqOf(v))
    const orphans: Bytes[] = []
    for await (const k of this.data.keys()) if (!live.has(seqOf(k))) orphans.push(k)
    if (orphans.length > 0) await this.data.batch(orphans.map((key) => ({ type: 'del' as const, key })))
    // LevelDB only drops deleted data when it compacts the tables holding
    // it; without this, `left gc` would return no space for a long time.
    if (cids.length > 0 || orphans.length > 0) await Promise.all([compact(this.chunks), compact(this.db)])
  }

  /** Drops every staged node (gc: a later sync re-fetches what it needs). */
  async clearStaging(): Promise<void> {
    await this.staging.clear()
  }
}

/** The messages of an error and its causes, joined: LevelDB nests the one that says what happened. */
function causeMessages(err: unknown): string {
  const out: string[] = []
  for (let e = err; e instanceof Error && out.length < 5; e = e.cause) out.push(e.message)
  return out.join(' | ')
}

/** A stat cache value's JSON object, or undefined when its bytes are damaged. */
function parseObject(text: string): Record<string, unknown> | undefined {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return undefined
  }
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined
}

/** A stat cache value, or undefined when it is not one (damaged bytes, a wrong shape). */
function parseStatEntry(text: string): StatEntry | undefined {
  const e = parseObject(text)
  if (e === undefined) return undefined
  const numbers = [e.size, e.mtimeMs, e.ctimeMs, e.ino].every((n) => typeof n === 'number' && Number.isFinite(n))
  if (!numbers || typeof e.cid !== 'string') return undefined
  return { size: e.size as number, mtimeMs: e.mtimeMs as number, ctimeMs: e.ctimeMs as number, ino: e.ino as number, cid: e.cid }
}

/** A directory stat value, or undefined when it is not one. */
function parseDirStat(text: string): DirStat | undefined {
  const e = parseObject(text)
  if (e === undefined || typeof e.cid !== 'string' || typeof e.at !== 'number' || typeof e.files !== 'number') return undefined
  const dirs = e.dirs
  if (typeof dirs !== 'object' || dirs === null || !Object.values(dirs).every((c) => typeof c === 'string')) return undefined
  return { cid: e.cid, at: e.at, files: e.files, dirs: dirs as Record<string, string> }
}

/** The stat cache key of directory `dir`'s own entry: its subtree's keys all start with it. */
function dirStatKey(dir: string): string {
  return dir === '' ? '' : dir + '/'
}

/** Compacts the whole database where the backend can (classic-level can; memory-level has nothing to compact). */
async function compact(db: Db): Promise<void> {
  const level = db as Db & { compactRange?: (start: Bytes, end: Bytes) => Promise<void> }
  if (typeof level.compactRange === 'function') await level.compactRange(new Uint8Array([0]), new Uint8Array(64).fill(0xff))
}

/** The character after '/': `d + AFTER_SLASH` is the first key past every path below directory `d`. */
const AFTER_SLASH = '0'

/** The key in `m` of the next chunk sequence number. */
const NEXT_SEQ = new TextEncoder().encode('nextSeq')
const FORMAT = new TextEncoder().encode('format')

function seqKey(seq: bigint): Bytes {
  const key = new Uint8Array(8)
  new DataView(key.buffer).setBigUint64(0, seq)
  return key
}

function seqOf(key: Bytes): bigint {
  return key.length === 8 ? new DataView(key.buffer, key.byteOffset, 8).getBigUint64(0) : -1n
}

async function openLevel(location: string, storePath: string, options: StoreOptions): Promise<Db> {
  const db = new Level<Bytes, Bytes>(location, {
    keyEncoding: 'view',
    valueEncoding: 'view',
    createIfMissing: options.create === true,
    writeBufferSize: options.writeBufferSize ?? 4 * 1024 * 1024,
    // Chunks are mostly already-compressed media or random data; snappy
    // would spend CPU to save little. The wire compresses where it pays.
    compression: false
  })
  try {
    await db.open()
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause
    if (String(cause?.message ?? '').includes('lock') || cause?.code === 'LEVEL_LOCKED') throw new StoreLockedError(storePath, err)
    if (options.create !== true && /does not exist|create_if_missing|No such file or directory/i.test(causeMessages(err))) {
      throw new StoreDamagedError(location, err)
    }
    throw new LeftError('LEFT_STORE_OPEN', `cannot open the store at ${storePath}`, { cause: err })
  }
  return db
}
