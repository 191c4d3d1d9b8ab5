/**
 * The object store: the only module that imports `level`. It owns two
 * LevelDBs under `.left/store`. `index/` holds these sublevels:
 *
 *   o  objects, keyed by CID bytes. A structure node (dag-cbor) is stored
 *      here as its exact bytes; a raw chunk is stored as an 8-byte big-endian
 *      sequence number, its bytes living in `chunks/` under that number
 *   c  commit index, keyed by CID string (for prefix lookup and `log`)
 *   r  refs: HEAD, and reflog/<time>-<suffix> for every HEAD it has had
 *   s  stat cache: share-relative path -> StatEntry (git's index, in spirit)
 *   p  staging: structure nodes fetched from a peer whose children are not all
 *      stored yet (see sync/fetch.ts)
 *   m  counters: `nextSeq`, the next chunk sequence number
 *
 * and `chunks/` holds one sublevel, d: chunk bytes keyed by sequence number.
 *
 * Invariant, kept by every writer: an object is in `o` only when every object
 * it links to is in `o` too, and a raw object's data is in `d`. So "I have
 * this CID" means "I have all of it", HEAD always points at a complete
 * snapshot, and a kill -9 at any instant leaves a store that fsck finds whole.
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
import { Level } from 'level'
import type { CID } from 'multiformats/cid'
import { LeftError, StoreDamagedError, StoreLockedError } from '../errors.js'
import { type Block, RAW, cidFromBytes } from '../object/index.js'

type Bytes = Uint8Array
import type { AbstractBatchOptions, AbstractSublevel } from 'abstract-level'
type Sub = AbstractSublevel<Level<Bytes, Bytes>, string | Bytes, Bytes, Bytes>

/** What the stat cache remembers about one file, to skip re-reading it. */
export interface StatEntry {
  readonly size: number
  readonly mtimeMs: number
  readonly ctimeMs: number
  readonly ino: number
  /** Root CID of the file content, as a string. */
  readonly cid: string
}

/**
 * One change to the store. Its index part (objects, commit index, refs,
 * stat cache, staging) lands in one LevelDB batch, all or nothing. Chunk
 * data goes first, to the other database: a crash between the two leaves
 * only data nothing points at, which gc sweeps.
 */
export interface StoreWrite {
  /** Objects to store. Their links must already be stored or be in this write. */
  readonly blocks?: readonly Block[]
  /** CIDs among `blocks` (or already stored) that are commits, for the index. */
  readonly commits?: readonly CID[]
  /** Refs to set, or to delete when null. */
  readonly refs?: Readonly<Record<string, CID | null>>
  /** Stat cache entries to set, or to delete when null. */
  readonly stat?: ReadonlyMap<string, StatEntry | null>
  /** Drop the whole stat cache first (checkout rewrites the folder). */
  readonly clearStat?: boolean
  /** Staged nodes to delete (they were promoted into `blocks`). */
  readonly unstage?: readonly CID[]
}

/**
 * Write options for a synchronous (fsynced) LevelDB write. classic-level
 * honours `sync`; abstract-level passes unknown options through, though its types do not
 * list this one.
 */
const SYNC: AbstractBatchOptions<Bytes, Bytes> & { readonly sync: boolean } = { sync: true }

const enc = new TextEncoder()
const dec = new TextDecoder()

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
}

/** A LevelDB-backed content-addressed store. Open with `Store.open`. */
export class Store {
  private constructor(
    private readonly db: Level<Bytes, Bytes>,
    private readonly chunks: Level<Bytes, Bytes>,
    private readonly objects: Sub,
    private readonly commitIndex: Sub,
    private readonly refs: Sub,
    private readonly stats: Sub,
    private readonly staging: Sub,
    /** Store-wide counters: `nextSeq`. */
    private readonly meta: Sub,
    private readonly data: Sub,
    /** The next free key in `d`. */
    private nextSeq: bigint,
    /** Filesystem path of the LevelDB directory. */
    readonly path: string
  ) {}

  /**
   * Opens the store in the directory `path`: the index database in
   * `path/index`, chunk data in `path/chunks`; with `create`, makes it first
   * if need be. Throws StoreLockedError when another process holds it and
   * StoreDamagedError when either database is missing.
   */
  static async open(path: string, options: StoreOptions = {}): Promise<Store> {
    if (options.create === true) await mkdir(path, { recursive: true })
    const db = await openLevel(join(path, 'index'), path, options)
    let chunks: Level<Bytes, Bytes>
    try {
      chunks = await openLevel(join(path, 'chunks'), path, options)
    } catch (err) {
      await db.close()
      throw err
    }
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
    return new Store(db, chunks, sub('o'), sub('c'), sub('r'), sub('s'), sub('p'), meta, data, nextSeq, path)
  }

  /** Closes the database; the store is unusable afterwards. */
  async close(): Promise<void> {
    await this.db.close()
    await this.chunks.close()
  }

  /** True when the object and (by the invariant) everything it reaches is stored. */
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

  /** Applies one write (see StoreWrite for what is atomic). */
  async write(w: StoreWrite): Promise<void> {
    // Read before the batch, deleted in it: clearing the stat cache lands
    // together with the entries that replace it.
    const staleStat: Bytes[] = []
    if (w.clearStat) for await (const k of this.stats.keys()) staleStat.push(k)
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
    const batch = this.db.batch()
    for (const k of staleStat) batch.del(k, { sublevel: this.stats })
    for (const [key, value] of objects) batch.put(key, value, { sublevel: this.objects })
    for (const c of w.commits ?? []) batch.put(enc.encode(c.toString()), new Uint8Array(0), { sublevel: this.commitIndex })
    for (const [name, cid] of Object.entries(w.refs ?? {})) {
      if (cid === null) batch.del(enc.encode(name), { sublevel: this.refs })
      else batch.put(enc.encode(name), cid.bytes, { sublevel: this.refs })
    }
    for (const [path, entry] of w.stat ?? []) {
      if (entry === null) batch.del(enc.encode(path), { sublevel: this.stats })
      else batch.put(enc.encode(path), enc.encode(JSON.stringify(entry)), { sublevel: this.stats })
    }
    for (const c of w.unstage ?? []) batch.del(c.bytes, { sublevel: this.staging })
    if (data.length > 0) batch.put(NEXT_SEQ, seqKey(this.nextSeq), { sublevel: this.meta })
    // A ref that survives a power cut must find everything below it.
    await batch.write(w.refs !== undefined ? SYNC : {})
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
  async loadStatCache(): Promise<Map<string, StatEntry>> {
    const out = new Map<string, StatEntry>()
    for await (const [k, v] of this.stats.iterator()) {
      try {
        out.set(dec.decode(k), JSON.parse(dec.decode(v)) as StatEntry)
      } catch {
        // A damaged cache entry only costs a re-read of that file.
      }
    }
    return out
  }

  /** Keeps a fetched structure node until its children arrive (see sync/fetch.ts). */
  async stage(block: Block): Promise<void> {
    await this.staging.put(block.cid.bytes, block.bytes)
  }

  /** A staged node's bytes, or undefined. */
  async getStaged(cid: CID): Promise<Bytes | undefined> {
    return (await this.staging.get(cid.bytes)) ?? undefined
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
    }
    // The index goes first, durably, so no entry is ever left pointing at
    // deleted data; the data it pointed at is swept just below.
    await batch.write(SYNC)
    const live = new Set<bigint>()
    for await (const [k, v] of this.objects.iterator()) if (cidFromBytes(k)?.code === RAW) live.add(seqOf(v))
    const orphans: Bytes[] = []
    for await (const k of this.data.keys()) if (!live.has(seqOf(k))) orphans.push(k)
    if (orphans.length > 0) await this.data.batch(orphans.map((key) => ({ type: 'del' as const, key })))
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

/** The key in `m` of the next chunk sequence number. */
const NEXT_SEQ = new TextEncoder().encode('nextSeq')

function seqKey(seq: bigint): Bytes {
  const key = new Uint8Array(8)
  new DataView(key.buffer).setBigUint64(0, seq)
  return key
}

function seqOf(key: Bytes): bigint {
  return key.length === 8 ? new DataView(key.buffer, key.byteOffset, 8).getBigUint64(0) : -1n
}

async function openLevel(location: string, storePath: string, options: StoreOptions): Promise<Level<Bytes, Bytes>> {
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
