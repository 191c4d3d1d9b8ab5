/**
 * Scanning the share folder into a Merkle snapshot. Directories are walked
 * bottom-up; each file is taken from the stat cache when its size, mtime,
 * ctime and inode match, and hashed otherwise. A directory whose files all
 * match and have not changed since, whose subdirectories made the CIDs
 * they made last time, and which lost nothing, is not encoded again: its
 * node comes from its own stat entry (DirStat), so an unchanged folder
 * costs about one lstat per file. Ignored paths, paths that cannot be
 * read, and files a peer's head is bringing in keep the entries they had in
 * the base tree (HEAD's).
 * Given the paths that may have changed since HEAD (`only`, from a folder
 * watcher), a snapshot looks at those alone and edits HEAD's tree above
 * them, so its cost follows the change, not the size of the folder.
 * Children are always written before their parents, so whatever part of a
 * snapshot lands in the store is complete below itself. The stat cache is
 * read and updated one directory at a time, so memory follows the widest
 * directory and the depth, not the size of the folder.
 */
import { lstatSync } from 'node:fs'
import { readdir, readlink } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { sep } from 'node:path'
import type { CID } from 'multiformats/cid'
import { FileAccessError } from '../errors.js'
import { type Block, type DirEntry, RAW, childPath, cidOf, cidText, compareNames, isSyncableName, layoutItems, parseCid } from '../object/index.js'
import type { DirStat, ObjectStore, StatDir, StatEntry } from '../store/index.js'
import { forEachLimit } from '../limit.js'
import { sameEntryOrAbsent } from '../tree/diff.js'
import { editDir, findEntry, readDir, sortByName } from '../tree/directory.js'
import type { ObjectSource } from '../tree/source.js'
import { BlockWriter } from './block-writer.js'
import { hashFile, isExec, sameStat } from './hash-file.js'
import type { IgnoreRules } from './ignore.js'

/**
 * How close (ms) a file's timestamps may be to the scan start before its stat
 * entry is not trusted: a write in the same timestamp tick as our read would
 * otherwise go unnoticed (git's "racy clean" problem).
 */
const RACY_MS = 100
/** Files hashed at once within one directory: overlaps small-file I/O. */
const FILE_CONCURRENCY = 8

/** What a snapshot needs. */
export interface SnapshotOptions {
  /** Absolute path of the share folder. */
  readonly share: string
  /** Where blocks go; undefined for a dry run (status, diff against the folder). */
  readonly store: ObjectStore | undefined
  /**
   * Where the stat cache is read from, and where a directory's stat entry
   * is checked to name a stored node (the store, also in a dry run);
   * updates go to `store`.
   */
  readonly stats: Pick<ObjectStore, 'statDir' | 'statEntry' | 'has'>
  readonly ignore: IgnoreRules
  /**
   * The tree the folder was last committed as (HEAD's). Ignored paths, and
   * paths that cannot be read, keep their entries from it: ignoring a file
   * or locking it away must not read as deleting it.
   */
  readonly base?: { readonly src: ObjectSource; readonly root: CID | undefined }
  /**
   * The only paths (share-relative) that may differ from the base tree;
   * undefined: any may. Each is looked at, with everything below it, and so
   * are the directories above it, by name; every other entry is the base's,
   * unread. Ignored for a dry run or without a base.
   */
  readonly only?: ReadonlySet<string>
  /**
   * The file written at `path` ahead of the head that brings it
   * (repo/write-ahead.ts), if it is one. While the file still has the stat
   * it was written with, and the base still has the version it replaced,
   * it is the peer's version on its way in, not an edit here: it keeps that
   * base entry (or stays out, if it was new), so it is neither committed
   * nor reported.
   */
  readonly inTransit?: (path: string) => InTransitFile | undefined
  /**
   * Asked of each file that must be read (its stat entry does not match):
   * true leaves it out of this snapshot, keeping its base entry (or
   * leaving it out, if new), as a file in transit is kept. A commit then
   * lands what is quick to read first, and takes the rest next.
   */
  readonly later?: (path: string, size: number) => boolean
  /** Called for each file actually read (not taken from the cache). */
  readonly onHash?: (path: string, size: number) => void
  /** Called for entries skipped because they cannot be synced (sockets, bad names) or cannot be read now. */
  readonly onSkip?: (path: string, why: string, kind: SkipKind) => void
}

/** A file written ahead of its head: see SnapshotOptions `inTransit`. */
export interface InTransitFile {
  /** Its stat entry just after it was written. */
  readonly stat: StatEntry
  /** The version it replaced (undefined: it was new). */
  readonly replaced: DirEntry | undefined
}

/** Why a path was left out: it can never be synced, or it cannot be read now (its committed entry is kept). */
export type SkipKind = 'unsyncable' | 'unreadable'

/** The result of a snapshot. */
export interface Snapshot {
  readonly root: CID
  /** Directory nodes by CID string; a dry run keeps them here instead of the store. */
  readonly dirs: Map<string, Uint8Array>
  readonly filesHashed: number
  readonly bytesHashed: number
  readonly bytesStored: number
  /** Paths left at their base entries without being known: unreadable, in transit, or left for later. */
  readonly held: readonly string[]
}

/** Snapshots the share folder. With a store, every block is stored before this returns. */
export async function snapshot(opts: SnapshotOptions): Promise<Snapshot> {
  const writer = new BlockWriter(opts.store)
  const state: State = { opts, writer, scanStart: Date.now(), dirs: new Map(), filesHashed: 0, bytesHashed: 0, held: [] }
  const base = opts.base
  let root: CID
  try {
    if (opts.only !== undefined && opts.store !== undefined && base?.root !== undefined && !opts.only.has('')) {
      root = await scopedDir(state, opts.share, '', base.root, scopeOf(opts.only))
    } else {
      const rootBase = baseDir(state, async () => base?.root)
      ;({ cid: root } = await snapshotDir(state, opts.share, '', rootBase, listDir(state, opts.share, '')))
    }
  } catch (err) {
    // A batch still being written holds stat entries: it must not land after
    // the caller lets go of the store (a gc then could delete its blocks and
    // keep its entries).
    await writer.settled()
    throw err
  }
  await writer.flush()
  return { root, dirs: state.dirs, filesHashed: state.filesHashed, bytesHashed: state.bytesHashed, bytesStored: writer.bytesWritten, held: state.held }
}

type State = {
  opts: SnapshotOptions; writer: BlockWriter; scanStart: number
  dirs: Map<string, Uint8Array>; filesHashed: number; bytesHashed: number
  held: string[]
}

/** A directory in the base tree, loaded only if asked for. */
interface BaseDir {
  /** Its CID, undefined when the base has no such directory. */
  readonly cid: () => Promise<CID | undefined>
  /** Its entries by name (none when the base has no such directory). */
  readonly entries: () => Promise<ReadonlyMap<string, DirEntry>>
}

const NO_ENTRIES: ReadonlyMap<string, DirEntry> = new Map()

/**
 * The absolute path of `name` in the folder at `abs`. Not path.join: it
 * normalizes the whole path again, building the result a segment at a
 * time, and each level of the walk keeps its folder's path: 1,500
 * folders down a single file's path, a heap snapshot found 1.1 million
 * string pieces, 64 MB. Here each level adds one piece to its parent's
 * path. A name is never `.` or `..` and holds no separator
 * (isSyncableName is checked before any of these paths is used), so
 * there is nothing to normalize.
 */
function below(abs: string, name: string): string {
  return abs + sep + name
}

/** Error codes that mean "this path cannot be read now": skipped with a warning, not fatal to the snapshot. */
const UNREADABLE = new Set(['EACCES', 'EPERM', 'EIO'])

/** A directory's snapshot: its CID, and whether everything in it was ignored. */
interface DirResult {
  readonly cid: CID
  readonly onlyIgnored: boolean
}

/** A directory's names and its part of the stat cache. */
type Listing = readonly [names: string[], cache: StatDir]

/** Starts reading a directory's names and stat cache entries. */
function listDir(s: State, abs: string, rel: string): Promise<Listing> {
  const listing = Promise.all([
    readdir(abs).catch((err: unknown) => { throw new FileAccessError(rel === '' ? '.' : rel, err) }),
    s.opts.stats.statDir(rel)
  ])
  // Read ahead of its turn: a failure is handled when its turn comes, or
  // not at all when the walk stops first.
  listing.catch(() => {})
  return listing
}

async function snapshotDir(s: State, abs: string, rel: string, base: BaseDir, listing: Promise<Listing>): Promise<DirResult> {
  const [names, cache] = await listing
  const entries: DirEntry[] = []
  /**
   * Files that match their stat entries: made into entries only if the node
   * must be made, and then one node at a time (below). Not their Stats: on
   * Node 20 each holds four Dates, and kept for a directory of 200,000 files
   * they were two thirds of the live heap (and V8 lets the heap grow to a
   * multiple of its live size).
   */
  const unchanged: Unchanged[] = []
  // Files and links first, in bounded parallel; subdirectories one at a time
  // so the walk's memory follows the depth, not the breadth, of the tree.
  const subdirs: string[] = []
  /** Names that could not be read, and files in transit: they keep their base entries. */
  const held = new Set<string>()
  /** Regular files and subdirectories looked at: the stat cache forgets the rest of what it has here. */
  const files = new Set<string>()
  /** Subdirectories walked. */
  const walked = new Set<string>()
  /** Subdirectories in the node, with their CIDs. */
  const listed = new Map<string, CID>()
  let ignored = 0
  let links = 0
  let hashed = 0
  const hold = (name: string, err: unknown): void => {
    held.add(name)
    holdUnreadable(s, childPath(rel, name), err)
  }
  // One task per name, made as it starts: closures made up front for a
  // directory of 200,000 names held tens of megabytes.
  await forEachLimit(names, FILE_CONCURRENCY, async (name) => {
    const childRel = childPath(rel, name)
    if (!isSyncableName(name)) {
      s.opts.onSkip?.(childRel, 'name cannot be synced', 'unsyncable')
      return
    }
    const childAbs = below(abs, name)
    let st: Stats
    try {
      // Synchronous on purpose: an lstat answered from the inode cache takes
      // a few microseconds, and the promise round trip through the thread
      // pool cost five times that, which dominated a no-op commit.
      st = lstatSync(childAbs)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return // deleted while we looked
      if (isUnreadable(err)) return hold(name, err)
      throw new FileAccessError(childRel, err)
    }
    if (s.opts.ignore.ignores(childRel, st.isDirectory())) {
      ignored++
      return
    }
    if (st.isDirectory()) {
      subdirs.push(name)
      return
    }
    try {
      if (st.isFile()) {
        files.add(name)
        const cached = cache.files.get(name)
        const look = await lookAtFile(s, childRel, st, cached, async () => (await base.entries()).get(name))
        if (look === 'held') {
          // Like an ignored path: a folder holding only such files is not new.
          held.add(name)
          ignored++
        } else if (look === 'unchanged') unchanged.push({ name, cached: cached!, exec: isExec(st) })
        else {
          hashed++
          entries.push(await hashedEntry(s, childAbs, childRel, name, cached))
        }
      } else if (st.isSymbolicLink()) {
        links++
        entries.push(await linkEntry(s, childAbs, childRel, name))
      } else s.opts.onSkip?.(childRel, 'not a regular file, directory or symlink', 'unsyncable')
    } catch (err) {
      if (!isUnreadable(err)) throw err
      hold(name, err)
    }
  })
  subdirs.sort(compareNames)
  // Each subdirectory's listing is read while the one before it is walked:
  // the waits for readdir and LevelDB overlap with work, for the memory of
  // one more directory per level.
  const list = (name: string): Promise<Listing> => listDir(s, below(abs, name), childPath(rel, name))
  let next = subdirs.length > 0 ? list(subdirs[0]!) : undefined
  for (const [i, name] of subdirs.entries()) {
    const listing = next!
    next = i + 1 < subdirs.length ? list(subdirs[i + 1]!) : undefined
    let sub: DirResult
    try {
      sub = await snapshotDir(s, below(abs, name), childPath(rel, name), childBase(s, base, name), listing)
    } catch (err) {
      // Only the subdirectory's own listing fails up to here: what cannot be
      // read deeper down was held where it was found.
      if (!isUnreadable(err)) throw err
      hold(name, err)
      continue
    }
    walked.add(name)
    // A folder that holds nothing but ignored files is not worth a new
    // entry: a peer deleting it would otherwise see it come back empty.
    if (sub.onlyIgnored && (await base.entries()).get(name)?.kind !== 'dir') {
      ignored++
      continue
    }
    listed.set(name, sub.cid)
    entries.push(dirEntry(name, sub.cid))
  }
  for (const name of cache.files.keys()) if (!files.has(name)) await s.writer.setStat(childPath(rel, name), null)
  for (const name of cache.dirs) if (!walked.has(name)) await s.writer.forgetStatUnder(childPath(rel, name))
  const known = cache.self === undefined ? false : await unchangedSince(s, cache.self, { held, links, hashed, unchanged, listed, base })
  if (known !== false) return { cid: known, onlyIgnored: unchanged.length === 0 && listed.size === 0 && ignored > 0 }

  // Made into entries all at once, their CIDs were most of the memory of a
  // commit in a directory of 200,000 files.
  const items: Item[] = entries
  for (const u of unchanged) {
    // A damaged CID in a stat entry: the file is read again.
    items.push(parseCid(u.cached.cid) === undefined ? await hashedEntry(s, below(abs, u.name), childPath(rel, u.name), u.name, u.cached) : u)
  }
  let kept = 0
  if (held.size > 0 || s.opts.ignore.active) {
    const present = new Set(items.map((e) => e.name))
    for (const e of (await base.entries()).values()) {
      if (present.has(e.name)) continue
      if (held.has(e.name) || s.opts.ignore.ignores(childPath(rel, e.name), e.kind === 'dir')) {
        items.push(e)
        kept++
      }
    }
  }
  // Each node is stored as it is made; the top one comes last.
  let top: Block | undefined
  for (const block of layoutItems(sortByName(items), entryOfItem)) {
    if (s.opts.store === undefined) s.dirs.set(block.cid.toString(), block.bytes)
    await s.writer.add(block)
    top = block
  }
  const cid = top!.cid
  // Only a node made of the folder's own content can be vouched for by the
  // folder's stat data; a symlink has no stat entry to vouch for it.
  if (held.size === 0 && kept === 0 && links === 0) await s.writer.setDirStat(rel, dirStatOf(cid, items, s.scanStart))
  return { cid, onlyIgnored: items.length === 0 && ignored > 0 }
}

/** Something a directory's node lists: an entry, or a file known by its stat entry (whose CID is sound). */
type Item = DirEntry | Unchanged

function entryOfItem(item: Item): DirEntry {
  return 'cached' in item ? cachedEntry(item.name, item.cached, item.exec)! : item
}

/**
 * What a regular file's stat says about it: `held` at its base entry (it is
 * in transit, or left for later), `unchanged` since its stat entry, or to
 * be `read`. In transit means written ahead with this very stat, over the
 * version the base still has.
 */
async function lookAtFile(s: State, rel: string, st: Stats, cached: StatEntry | undefined, baseEntry: () => Promise<DirEntry | undefined>): Promise<'held' | 'unchanged' | 'read'> {
  const transit = s.opts.inTransit?.(rel)
  if (transit !== undefined && sameStat(transit.stat, st) && sameEntryOrAbsent(await baseEntry(), transit.replaced)) return holdBase(s, rel)
  if (cached !== undefined && sameStat(cached, st)) return 'unchanged'
  if (s.opts.later?.(rel, st.size) === true) return holdBase(s, rel)
  return 'read'
}

/** Notes that `rel` keeps its base entry unknown (see Snapshot `held`). */
function holdBase(s: State, rel: string): 'held' {
  s.held.push(rel)
  return 'held'
}

/** Keeps `rel`'s base entry because it cannot be read now, and says so. */
function holdUnreadable(s: State, rel: string, err: unknown): void {
  holdBase(s, rel)
  s.opts.onSkip?.(rel, `cannot be read (${errorCode(err)})`, 'unreadable')
}

/** The changed paths of a scoped snapshot, by the directory they are in. */
interface Scope {
  /** Names to look at in each directory ('' for the top). */
  readonly below: ReadonlyMap<string, ReadonlySet<string>>
  /** Paths looked at whole, everything below them included. */
  readonly whole: ReadonlySet<string>
}

function scopeOf(paths: ReadonlySet<string>): Scope {
  const below = new Map<string, Set<string>>()
  for (const path of paths) {
    let dir = ''
    for (const name of path.split('/')) {
      let names = below.get(dir)
      if (names === undefined) below.set(dir, (names = new Set()))
      names.add(name)
      dir = childPath(dir, name)
    }
  }
  return { below, whole: paths }
}

/** Stands for "keep the base entry" among a scoped directory's edits. */
const KEEP = Symbol('keep')

/** What becomes of a name in a scoped directory: its new entry, undefined when it goes, or KEEP. */
type Edit = DirEntry | undefined | typeof KEEP

/**
 * Above this many names to look at in one directory, its base node and
 * its stat cache are read whole once, as a whole walk would, instead of
 * once per name (a flat node read per name costs its width each time).
 */
const MANY_NAMES = 16

/**
 * The node of directory `rel` when only the names `scope` lists in it may
 * differ from its base node `baseCid`: those are looked at, and the base
 * node is edited (one small node per shard level), so the directory is
 * neither listed nor its other entries read. Its DirStat needs no care:
 * the stat entries written or dropped for what changed drop it, a new
 * link or a file too new for a stat entry keeps it from being trusted
 * (see unchangedSince), and a changed subdirectory no longer has the CID
 * it lists. Files go in bounded parallel, subdirectories one at a time,
 * as in the whole walk.
 */
async function scopedDir(s: State, abs: string, rel: string, baseCid: CID, scope: Scope): Promise<CID> {
  const src = s.opts.base!.src
  const names = [...(scope.below.get(rel) ?? [])]
  const many = names.length > MANY_NAMES
  const baseEntries = lazy(async () => new Map((await readDir(src, baseCid)).map((e) => [e.name, e])))
  const statFiles = lazy(async () => (await s.opts.stats.statDir(rel)).files)
  const edits = new Map<string, DirEntry | undefined>()
  const subdirs: Array<[string, () => Promise<Edit>, () => Promise<DirEntry | undefined>]> = []
  // An entry as it was is no edit: a directory whose reported paths did
  // not change is not encoded again.
  const note = async (name: string, edit: Edit, before: () => Promise<DirEntry | undefined>): Promise<void> => {
    if (edit !== KEEP && !sameEntryOrAbsent(await before(), edit)) edits.set(name, edit)
  }
  await forEachLimit(names, FILE_CONCURRENCY, async (name) => {
    const childRel = childPath(rel, name)
    const look: ScopedLook = {
      abs: below(abs, name), rel: childRel, name, scope,
      before: lazy(async () => (many ? (await baseEntries()).get(name) : findEntry(src, baseCid, name))),
      cached: async () => (many ? (await statFiles()).get(name) : s.opts.stats.statEntry(childRel))
    }
    const edit = await scopedEntry(s, look)
    if (typeof edit === 'function') subdirs.push([name, edit, look.before])
    else await note(name, edit, look.before)
  })
  for (const [name, walk, before] of subdirs) await note(name, await walk(), before)
  if (edits.size === 0) return baseCid
  const { cid } = await editDir(src, { put: (block) => s.writer.add(block) }, baseCid, edits)
  return cid
}

/** A name in a scoped directory, and how to find what HEAD and the stat cache have for it. */
interface ScopedLook {
  readonly abs: string
  readonly rel: string
  readonly name: string
  readonly scope: Scope
  readonly before: () => Promise<DirEntry | undefined>
  readonly cached: () => Promise<StatEntry | undefined>
}

/**
 * What becomes of one name in a scoped directory; for a directory, a
 * function that walks it, to be run after the files. Follows the whole
 * walk's rules: ignored and unreadable paths keep their base entries, a
 * base entry is kept only if ignored as the kind it was, and the stat
 * cache forgets what is no longer there as it was.
 */
async function scopedEntry(s: State, at: ScopedLook): Promise<Edit | (() => Promise<Edit>)> {
  const { abs, rel, name } = at
  if (!isSyncableName(name)) {
    s.opts.onSkip?.(rel, 'name cannot be synced', 'unsyncable')
    return KEEP
  }
  let st: Stats | undefined
  try {
    st = lstatSync(abs)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (!isUnreadable(err)) throw new FileAccessError(rel, err)
      holdUnreadable(s, rel, err)
      return KEEP
    }
  }
  const before = await at.before()
  const kind = st === undefined ? undefined : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'link' : 'other'
  if (before !== undefined && before.kind !== kind) await forgetStat(s, rel, before)
  // Where nothing that can be synced is here, HEAD's entry stays only while
  // ignored as what it was; otherwise it goes. The rest of the whole
  // walk's rules follow from that.
  const none: Edit = before === undefined || s.opts.ignore.ignores(rel, before.kind === 'dir') ? KEEP : undefined
  if (st === undefined || s.opts.ignore.ignores(rel, kind === 'dir')) return none
  const unreadable = (err: unknown): Edit => {
    if (!isUnreadable(err)) throw err
    holdUnreadable(s, rel, err)
    return KEEP
  }
  if (kind === 'dir') {
    return async () => {
      try {
        if (before?.kind === 'dir' && !at.scope.whole.has(rel)) return dirEntry(name, await scopedDir(s, abs, rel, before.cid, at.scope))
        const sub = await snapshotDir(s, abs, rel, baseDir(s, async () => (before?.kind === 'dir' ? before.cid : undefined)), listDir(s, abs, rel))
        // As in the whole walk: a new folder of ignored files is not worth an entry.
        if (sub.onlyIgnored && before?.kind !== 'dir') return none
        return dirEntry(name, sub.cid)
      } catch (err) {
        return unreadable(err)
      }
    }
  }
  try {
    if (kind === 'file') {
      const cached = await at.cached()
      const look = await lookAtFile(s, rel, st, cached, at.before)
      if (look === 'held') return KEEP
      if (look === 'unchanged') {
        const entry = cachedEntry(name, cached!, isExec(st))
        if (entry !== undefined) return entry
      }
      return await hashedEntry(s, abs, rel, name, cached)
    }
    if (kind === 'link') return await linkEntry(s, abs, rel, name)
  } catch (err) {
    return unreadable(err)
  }
  s.opts.onSkip?.(rel, 'not a regular file, directory or symlink', 'unsyncable')
  return none
}

/** Forgets the stat cache of what the base had at `rel`, which is gone or changed kind. */
function forgetStat(s: State, rel: string, was: DirEntry): Promise<void> {
  return was.kind === 'dir' ? s.writer.forgetStatUnder(rel) : s.writer.setStat(rel, null)
}

function dirEntry(name: string, cid: CID): DirEntry {
  return { name, kind: 'dir', cid, size: 0, mtime: 0, exec: false }
}

/** What a directory's walk found, before its node is made. */
interface Walk {
  readonly held: ReadonlySet<string>
  readonly links: number
  /** Files read because they did not match their stat entries. */
  readonly hashed: number
  readonly unchanged: readonly Unchanged[]
  readonly listed: ReadonlyMap<string, CID>
  readonly base: BaseDir
}

/**
 * The CID `self` names, when a fresh layout of what `w` found would make
 * that very node; false otherwise. A file that went leaves fewer files
 * than the node lists, and one that came has no stat entry to match (or
 * one written after `self`, which dropped it). Ignored files need no check
 * of their own: one newly ignored is missing from the count, and one no
 * longer ignored has no entry.
 */
async function unchangedSince(s: State, self: DirStat, w: Walk): Promise<CID | false> {
  if (w.held.size > 0 || w.links > 0 || w.hashed > 0) return false
  if (w.unchanged.length !== self.files) return false
  // A file changed after the entry was made, even one whose stat entry was
  // written by a LEFT that knows nothing of directory entries (an older
  // version on the same store), has a later ctime.
  // (A match has the stat entry's very ctime.)
  for (const u of w.unchanged) if (u.cached.ctimeMs >= self.at) return false
  let count = 0
  for (const name in self.dirs) {
    const cid = w.listed.get(name)
    if (cid === undefined || cidText(cid) !== self.dirs[name]) return false
    count++
  }
  if (count !== w.listed.size) return false
  // With ignore rules, entries of HEAD's may be kept (see snapshotDir): the
  // node is the folder's own content only while HEAD has this very node.
  if (s.opts.ignore.active && (await w.base.cid())?.toString() !== self.cid) return false
  const cid = parseCid(self.cid)
  // Stored, with everything below it (the store's invariant); an older
  // LEFT's gc may have deleted it without knowing this entry.
  return cid !== undefined && (await s.opts.stats.has(cid)) ? cid : false
}

/** The stat entry of a directory whose node is `cid`, made of `items` (files and directories only) by a scan that started at `at`. */
function dirStatOf(cid: CID, items: readonly Item[], at: number): DirStat {
  // No prototype: a folder may be called `__proto__`.
  const dirs: Record<string, string> = Object.create(null) as Record<string, string>
  let files = 0
  for (const e of items) {
    if (!('cached' in e) && e.kind === 'dir') dirs[e.name] = cidText(e.cid)
    else files++
  }
  return { cid: cidText(cid), at, files, dirs }
}

/** The base directory whose CID `cid` finds. */
function baseDir(s: State, cid: () => Promise<CID | undefined>): BaseDir {
  const once = lazy(cid)
  return {
    cid: once,
    entries: lazy(async () => {
      const c = await once()
      return c === undefined || s.opts.base === undefined ? NO_ENTRIES : entriesOf(s.opts.base.src, c)
    })
  }
}

/** The base directory of subdirectory `name`, given its parent's. */
function childBase(s: State, parent: BaseDir, name: string): BaseDir {
  return baseDir(s, async () => {
    const entry = (await parent.entries()).get(name)
    return entry?.kind === 'dir' ? entry.cid : undefined
  })
}

async function entriesOf(src: ObjectSource, dir: CID): Promise<ReadonlyMap<string, DirEntry>> {
  return new Map((await readDir(src, dir)).map((e) => [e.name, e]))
}

/** Runs `load` once, on first call. */
function lazy<T>(load: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined
  return () => (value ??= load())
}

function isUnreadable(err: unknown): boolean {
  return UNREADABLE.has(errorCode(err))
}

/** The errno code of `err`, or of the cause a FileAccessError wraps. */
function errorCode(err: unknown): string {
  const cause = err instanceof FileAccessError ? err.cause : err
  return String((cause as NodeJS.ErrnoException | undefined)?.code ?? '')
}

/** A file that matches its stat entry (see lookAtFile), with what its entry needs that the stat entry lacks. */
interface Unchanged {
  readonly name: string
  readonly cached: StatEntry
  readonly exec: boolean
}

/**
 * The entry of a file that matches its stat entry, or undefined when the
 * entry's CID is damaged. Trusting the cache without a store lookup is sound
 * because entries are only written together with (or after) the objects
 * they name, and gc drops the entries of objects it deletes. A match has
 * the stat entry's size and mtime.
 */
function cachedEntry(name: string, cached: StatEntry, exec: boolean): DirEntry | undefined {
  const cid = parseCid(cached.cid)
  return cid === undefined ? undefined : { name, kind: 'file', cid, size: cached.size, mtime: Math.floor(cached.mtimeMs), exec }
}

/** Reads and stores a file, and updates its stat entry. */
async function hashedEntry(s: State, abs: string, rel: string, name: string, cached: StatEntry | undefined): Promise<DirEntry> {
  // The version last seen here guides the cutting of a big file (hash-file.ts).
  const previousCid = cached === undefined ? undefined : parseCid(cached.cid)
  const src = s.opts.base?.src
  const previous = previousCid === undefined || src === undefined ? undefined : { src, cid: previousCid, size: cached!.size }
  const { root, stat } = await hashFile(abs, rel, s.writer, previous)
  s.opts.onHash?.(rel, stat.size)
  s.filesHashed++
  s.bytesHashed += stat.size
  const racy = Math.max(stat.mtimeMs, stat.ctimeMs) + RACY_MS >= s.scanStart
  if (!racy) await s.writer.setStat(rel, toStatEntry(stat, root.cid))
  else if (cached !== undefined) await s.writer.setStat(rel, null)
  return { name, kind: 'file', cid: root.cid, size: root.size, mtime: Math.floor(stat.mtimeMs), exec: isExec(stat) }
}

async function linkEntry(s: State, abs: string, rel: string, name: string): Promise<DirEntry> {
  let target: Buffer
  try {
    target = await readlink(abs, { encoding: 'buffer' })
  } catch (err) {
    throw new FileAccessError(rel, err)
  }
  const cid = cidOf(RAW, target)
  await s.writer.add({ cid, bytes: target })
  return { name, kind: 'link', cid, size: target.length, mtime: 0, exec: false }
}

/** The stat cache entry for a file whose content has root `cid`. */
export function toStatEntry(st: Stats, cid: CID): StatEntry {
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, cid: cidText(cid) }
}
