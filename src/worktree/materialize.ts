/**
 * Writing snapshots into the share folder. Every file is written to a temp
 * file under `.left/tmp`, given its mode and mtime, and renamed into place,
 * so a reader sees the old file or the new one, never a mix; each is
 * fsynced before its rename, so a power cut cannot show it torn either.
 * An apply whose caller can finish it after a crash (checkout) instead
 * fsyncs the files in batches once they are renamed, and all before it ends.
 * A new version of a big file is written from its old version where they
 * share chunks (a clone where they stay in place), each such chunk hashed,
 * so an edit costs what it changed plus a copy, not a read of every chunk
 * from the store.
 * Nothing is ever written through a symlink: every parent directory on
 * the way is checked with lstat first. Guarded applies never replace what
 * they did not expect, and never touch an ignored path.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, constants, fchmodSync, fdatasync as fdatasyncCallback, fstatSync, futimesSync, lstatSync, openSync, renameSync, writeSync } from 'node:fs'
import { chmod, copyFile, type FileHandle, lstat, mkdir, open, readdir, readlink, rename, rm, rmdir, statfs, symlink, unlink } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { FileAccessError, NoSpaceError } from '../errors.js'
import { type DirEntry, RAW, cidOf, parentPath, verifyBytes } from '../object/index.js'
import type { StatEntry } from '../store/index.js'
import { type Leaf, fileChunkGroups, fileLeaves, readLeaves } from '../tree/file.js'
import { OLD_RUN_BYTES, type Run, fileRuns, indexChunks } from '../tree/file-delta.js'
import { type ObjectSource, mustGet } from '../tree/source.js'
import { forEachLimit } from '../limit.js'
import { READ_NOFOLLOW, isExec, sameStat } from './hash-file.js'
import { type IgnoreRules, NO_RULES } from './ignore.js'
import { readRange } from './read-range.js'
import { toStatEntry } from './snapshot.js'

/** One path that differs between what the folder has and what it should have. */
export interface PathChange {
  /** Share-relative posix path. */
  readonly path: string
  /** What the folder is expected to hold now (undefined: nothing). */
  readonly before?: DirEntry | undefined
  /** What it should hold afterwards (undefined: nothing). */
  readonly after?: DirEntry | undefined
}

/** Where and how to apply changes. */
export interface ApplyOptions {
  readonly share: string
  /** A directory on the same filesystem as the share, outside it (`.left/tmp`). */
  readonly tmp: string
  readonly src: ObjectSource
  /**
   * Leave alone any path whose current state is not `before`: it holds an
   * edit made since the last commit, which the next commit will pick up.
   * Leave alone every path `ignore` names too, and a directory that still
   * holds ignored files once its tracked ones are gone.
   */
  readonly guard: boolean
  /** The receiver's ignore rules (guarded applies only). */
  readonly ignore?: IgnoreRules
  /**
   * The stat cache entry of a path. A big file whose entry names the
   * version being replaced, and whose stat still matches it, is where its
   * new version starts from (every chunk taken from it is hashed); one that
   * names the version being written is left as it is. Without this, every
   * file is written from the store alone.
   */
  readonly statOf?: (path: string) => Promise<StatEntry | undefined>
  /**
   * With `guard`: replace a file only where the stat cache vouches that
   * it is the version being replaced (by CID and its whole stat), not
   * merely by its size and mtime. Writing ahead of a head (repo/write-ahead.ts)
   * has no commit before it to catch an edit that kept both.
   */
  readonly vouched?: boolean
  /**
   * Make the files durable a batch at a time once renamed, not each one
   * before its rename: fsyncing 10,000 small files one by one took longer
   * than writing them. Until the apply returns, a power cut can leave a file
   * renamed into place but torn, so only a caller that records what it was
   * doing, and can finish it later, may ask for this (checkout does).
   */
  readonly syncAtEnd?: boolean
  /**
   * The caller has checked the free space for these changes and more
   * (`checkSpace` over the whole diff, before applying it in windows).
   */
  readonly spaceChecked?: boolean
  /** Called once the free space is checked, before anything in the folder changes (a checkout marks itself here). */
  readonly beforeWrite?: () => Promise<void>
  /** Called after each file is written. */
  readonly onWrite?: (path: string, entry: DirEntry) => void
  /** For tests: called at each step of writing one file or link, so a test can edit the path right then. */
  readonly hooks?: ApplyHooks
}

/** The steps of writing one file where a local edit can land (for tests). */
export interface ApplyHooks {
  /** The path was checked and will be written. */
  afterPlan?(path: string): Promise<void>
  /** The new content is in its temp file, not yet renamed into place. */
  afterWrite?(path: string): Promise<void>
  /** The new content has been renamed into place. */
  afterRename?(path: string): Promise<void>
}

/** What applying changed. */
export interface ApplyResult {
  /** Stat cache entries for files written. */
  readonly stat: Map<string, StatEntry | null>
  /** Paths left alone because they held local edits (guard mode). */
  readonly skipped: string[]
  /** Paths left alone because the receiver ignores them, or directories kept for ignored files inside (guard mode). */
  readonly ignored: string[]
  /** Files and links removed from the folder. */
  readonly deleted: string[]
  /** Bytes of new file versions copied from the old versions they replaced, not read from the store. */
  reused: number
}

/** Applies `changes` to the share folder: removals deepest first, then creations shallowest first. */
export async function applyChanges(changes: readonly PathChange[], opts: ApplyOptions): Promise<ApplyResult> {
  if (opts.spaceChecked !== true) await checkSpace(changes, opts.tmp)
  if (changes.length > 0) await opts.beforeWrite?.()
  const result: ApplyResult = { stat: new Map(), skipped: [], ignored: [], deleted: [], reused: 0 }
  const removals = changes.filter((c) => c.before !== undefined && (c.after === undefined || c.after.kind !== c.before.kind))
  removals.sort((a, b) => (a.path < b.path ? 1 : a.path > b.path ? -1 : 0))
  // Directories known to be real, by share path: each is checked once per
  // apply, not once per path below it, so a tree thousands of levels deep
  // costs as many lstats as it has directories.
  const realDirs = new Set<string>()
  for (const c of removals) await removeOne(c, opts, result, realDirs)
  const creations = changes.filter((c) => c.after !== undefined)
  creations.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  // Directories first, in order, so every file's parents exist; then files
  // in batches, each batch's fsyncs overlapping so that the filesystem
  // commits many in one journal transaction. Parents are checked afresh:
  // the removals may have taken some away.
  realDirs.clear()
  for (const c of creations) if (c.after!.kind === 'dir') await createOne(c, opts, result, realDirs)
  // Every write has stopped before this returns or throws: nothing is written after.
  await writeBatches(creations.filter((c) => c.after!.kind !== 'dir'), opts, result, realDirs)
  await syncParents(opts.share, changes.map((c) => c.path))
  return result
}

/**
 * Writes `files`, BATCHES_AT_ONCE batches at a time: the small files of a
 * batch are read in two round trips to LevelDB for all of them, then
 * written one by one with synchronous calls while the next batch is read.
 * Each file is durable before its rename: a batch's small files are
 * fsynced together in the thread pool, then renamed. With syncAtEnd they
 * are renamed at once instead, and fsynced in the thread pool while later
 * batches are written. Either way, all are durable when this returns.
 */
async function writeBatches(files: readonly PathChange[], opts: ApplyOptions, result: ApplyResult, realDirs: Set<string>): Promise<void> {
  // With syncAtEnd, one batch is synced at a time, so at most SYNC_CONCURRENCY files are open for it.
  let syncing: Promise<void> = Promise.resolve()
  let syncFailure: { error: unknown } | undefined
  try {
    await forEachLimit(inBatches(files), BATCHES_AT_ONCE, async (batch) => {
      const content = await readSmallFiles(opts.src, batch)
      if (opts.syncAtEnd !== true) return writeDurably(batch, content, opts, result, realDirs)
      const written: string[] = []
      for (let i = 0; i < batch.length; i++) await createOne(batch[i]!, opts, result, realDirs, written, content[i])
      syncing = syncing.then(() => syncFiles(opts.share, written)).catch((error: unknown) => { syncFailure ??= { error } })
    })
  } finally {
    await syncing
  }
  if (syncFailure !== undefined) throw syncFailure.error
}

/** Batches written at once: one is read from the store while another is written. */
const BATCHES_AT_ONCE = 2

/**
 * Writes one batch, each file durable before its rename. Small files
 * (`content` read already) go to temp files with synchronous calls, are
 * fsynced all together in the thread pool, and only then renamed into
 * place one by one: as little as one round trip through the thread pool
 * per file, where writing it on its own took about ten. Links and big
 * files are written meanwhile, several at a time, each fsynced before its
 * own rename.
 */
async function writeDurably(batch: readonly PathChange[], content: ReadonlyArray<Buffer | undefined>, opts: ApplyOptions, result: ApplyResult, dirs: Set<string>): Promise<void> {
  // Once either half fails, neither starts another file: a failed apply
  // must not go on moving big files into the folder before it says so.
  const stop = { failed: false }
  const failing = (error: unknown): never => {
    stop.failed = true
    throw error
  }
  const small = batch.flatMap((c, i) => (content[i] === undefined ? [] : [{ c, bytes: content[i]! }]))
  const others = batch.filter((_, i) => content[i] === undefined)
  const done = await Promise.allSettled([
    writeSmallDurably(small, opts, result, dirs, stop).catch(failing),
    forEachLimit(others, WRITE_CONCURRENCY / BATCHES_AT_ONCE, async (c) => {
      if (!stop.failed) await createOne(c, opts, result, dirs).catch(failing)
    })
  ])
  for (const d of done) if (d.status === 'rejected') throw d.reason
}

/** writeDurably's small files: staged, fsynced together, then placed; no new one is staged once `stop.failed`. */
async function writeSmallDurably(files: ReadonlyArray<{ c: PathChange; bytes: Buffer }>, opts: ApplyOptions, result: ApplyResult, dirs: Set<string>, stop: { readonly failed: boolean }): Promise<void> {
  const staged: Staged[] = []
  // Descriptors of staged files not closed yet, and their paths. A number
  // leaves this map before it is closed and is never used again: another
  // open may be given it at once.
  const unclosed = new Map<number, string>()
  // Closes them all, and returns the first failure, if any.
  const closeAll = (): FileAccessError | undefined => {
    let failure: FileAccessError | undefined
    for (const [fd, path] of unclosed) {
      unclosed.delete(fd)
      try {
        closeSync(fd)
      } catch (err) {
        failure ??= new FileAccessError(path, err)
      }
    }
    return failure
  }
  let placed = 0
  try {
    for (const { c, bytes } of files) {
      if (stop.failed) return
      const one = await stageOne(c, opts, result, dirs, bytes, true)
      if (one === undefined) continue
      staged.push(one)
      unclosed.set(one.fd!, c.path)
    }
    await forEachLimit(staged, SYNC_CONCURRENCY, async (one) => {
      await fdatasync(one.fd!).catch((err: unknown) => { throw new FileAccessError(one.c.path, err) })
    })
    const closing = closeAll()
    if (closing !== undefined) throw closing
    for (; placed < staged.length && !stop.failed; placed++) await placeOne(staged[placed]!, opts, result)
  } finally {
    // After a failure, the error being thrown is the one to report.
    closeAll()
    for (const one of staged.slice(placed)) await rm(one.tmp, { force: true }).catch(() => {})
  }
}

/**
 * Makes what is at `paths` durable: each file's content, then each
 * directory holding one of them (so a rename, creation or removal there is
 * too). Finishing or ending a checkout that was cut short syncs what that
 * checkout changed this way, as its own run never got to.
 */
export async function syncPaths(share: string, paths: readonly string[]): Promise<void> {
  await syncFiles(share, paths)
  await syncParents(share, paths)
}

/**
 * Fsyncs the files at `paths`, many at a time, so the filesystem commits
 * them in few journal transactions. A path that holds no file is skipped; a
 * path replaced since holds someone else's file, and syncing that too does
 * no harm.
 */
async function syncFiles(share: string, paths: readonly string[]): Promise<void> {
  await forEachLimit(paths, SYNC_CONCURRENCY, async (path) => {
    let fh: FileHandle | undefined
    try {
      // Non-blocking: a FIFO made at the path would hang the open.
      fh = await open(join(share, path), READ_NOFOLLOW | constants.O_NONBLOCK)
      if ((await fh.stat()).isFile()) await fh.datasync()
    } catch (err) {
      // Gone, below a file, a link or socket now, or a file we may not open: not one we wrote.
      const code = (err as NodeJS.ErrnoException).code
      if (!isAbsent(err) && !['ELOOP', 'ENXIO', 'EACCES', 'EPERM'].includes(code ?? '')) throw new FileAccessError(path, err)
    } finally {
      await fh?.close()
    }
  })
}

const fdatasync = promisify(fdatasyncCallback)

/** Files fsynced at once by syncFiles and writeSmallDurably: enough to keep the thread pool's four threads busy. */
const SYNC_CONCURRENCY = 8

/**
 * Fsyncs the directories that hold the changed paths, so the renames and
 * removals are on disk before the caller moves HEAD: after a power cut the
 * folder must not show older files under a newer HEAD (the next commit would
 * record them as a revert). One fsync per directory, not per file.
 */
async function syncParents(share: string, paths: readonly string[]): Promise<void> {
  const parents = new Set<string>()
  for (const p of paths) parents.add(parentPath(p))
  await forEachLimit([...parents], WRITE_CONCURRENCY, async (dir) => {
    // A directory that is gone, or was never made, holds nothing to sync.
    const fh = await open(join(share, dir), 'r').catch(() => undefined)
    if (fh === undefined) return
    try {
      // Some filesystems cannot fsync a directory; the files themselves were.
      await fh.sync().catch(() => {})
    } finally {
      await fh.close()
    }
  })
}

/** Files written at once. */
const WRITE_CONCURRENCY = 8

/**
 * Throws NoSpaceError when the files to write, less those they replace or
 * delete, would not fit in the free space of the filesystem holding `tmp`
 * (the share's), with room for the largest replaced file twice (its new
 * version is written beside it before the rename). Sizes are as declared by
 * the snapshot: this is what stops a peer from sending a small tree that
 * claims a huge file. Takes a stream, so a diff too big to hold is checked
 * whole before the first of its windows is applied.
 */
export async function checkSpace(changes: Iterable<PathChange> | AsyncIterable<PathChange>, tmp: string): Promise<void> {
  let written = 0
  let freed = 0
  let overlap = 0
  for await (const c of changes) {
    if (c.after?.kind === 'file') written += c.after.size
    if (c.before?.kind === 'file') {
      freed += c.before.size
      if (c.after?.kind === 'file') overlap = Math.max(overlap, c.before.size)
    }
  }
  if (written === 0) return
  const needed = Math.max(0, written - freed) + overlap
  const fs = await statfs(tmp)
  const free = fs.bavail * fs.bsize
  if (needed > free) throw new NoSpaceError(needed, free)
}

/** Changes per window of applyWindows: a few MB of entries held at a time, many read batches each. */
export const APPLY_WINDOW = 4096

/**
 * Cuts a pre-order stream of changes (diffTrees' order) into windows that
 * can be applied one after another, each with its own applyChanges, so
 * memory follows the window, not the diff: a first sync of a million
 * files held every change, and every stat entry, at once. A window holds
 * about `size` changes. A directory being removed (deleted, or replaced by
 * a file or link) goes only once everything below it has, in the same
 * apply: while its subtree goes on past the end of a window, it moves on
 * to the next, so a window holds at most as many more as the tree is deep.
 * Every other order holds across windows: a path's parents come before
 * it, so they are made in an earlier window or its own.
 */
export async function* applyWindows<C extends PathChange>(changes: AsyncIterable<C>, size = APPLY_WINDOW): AsyncGenerator<C[]> {
  let window: C[] = []
  for await (const c of changes) {
    if (window.length >= size) {
      const open = window.filter((w) => removesDir(w) && c.path.startsWith(`${w.path}/`))
      const rest = open.length === 0 ? window : window.filter((w) => !open.includes(w))
      if (rest.length > 0) yield rest
      window = open
    }
    window.push(c)
  }
  if (window.length > 0) yield window
}

/** True when `c` removes a directory: it is deleted, or replaced by a file or link. */
function removesDir(c: PathChange): boolean {
  return c.before?.kind === 'dir' && c.after?.kind !== 'dir'
}

async function removeOne(c: PathChange, opts: ApplyOptions, result: ApplyResult, realDirs: Set<string>): Promise<void> {
  const abs = join(opts.share, c.path)
  // A parent that is not a real directory (a link put there since) holds
  // nothing of ours, and lstat below it would follow the link out of the share.
  if (!(await parentsAreDirs(opts.share, c.path, realDirs))) return
  const st = await lstatOrUndefined(abs)
  if (st === undefined) return
  if (ignoredHere(opts, c.path, st, c.before)) {
    result.ignored.push(c.path)
    return
  }
  if (opts.guard && !(await holds(abs, st, c.before))) {
    result.skipped.push(c.path)
    return
  }
  try {
    if (st.isDirectory()) {
      // Guarded: only an empty directory goes, so untracked new files survive.
      if (!opts.guard) await rm(abs, { recursive: true, force: true })
      else if (!(await rmdir(abs).then(() => true, () => false))) {
        if (await holdsOnlyIgnored(abs, c.path, opts.ignore ?? NO_RULES).catch(() => false)) result.ignored.push(c.path)
        else result.skipped.push(c.path)
        return
      }
    } else {
      await unlink(abs)
      result.deleted.push(c.path)
    }
  } catch (err) {
    throw new FileAccessError(c.path, err)
  }
  result.stat.set(c.path, null)
}

/** A file or link whose new version is in its temp file, checked and ready to be renamed into place. */
interface Staged {
  readonly c: PathChange
  readonly abs: string
  /** What was at the path when it was checked: the rename happens only if it still is. */
  readonly st: Stats | undefined
  readonly tmp: string
  /** The temp file's stat once written. */
  readonly ours: Stats
  readonly reused: number
  /** Written with synchronous calls, as its checks and rename are: a small file read already. */
  readonly small: boolean
  /** The temp file, still open, when it is a small file to be fsynced with its batch before the rename. */
  readonly fd?: number
}

/**
 * Writes `c.after` at its path, and adds the path of a file written to
 * `written`. `content` is the whole content of a small file, read already:
 * it is written with synchronous calls.
 */
async function createOne(c: PathChange, opts: ApplyOptions, result: ApplyResult, dirs: Set<string>, written?: string[], content?: Buffer): Promise<void> {
  const staged = await stageOne(c, opts, result, dirs, content, false)
  if (staged !== undefined) await placeOne(staged, opts, result, written)
}

/**
 * Checks the path of `c` and writes its new version to a temp file; a
 * directory is made at once. Undefined when there is nothing to rename:
 * the path was a directory, already held `c.after`, or is left alone
 * (`result` says which). With `keepOpen`, a small file's temp file is not
 * made durable, and is returned open for its batch to do so.
 */
async function stageOne(c: PathChange, opts: ApplyOptions, result: ApplyResult, dirs: Set<string>, content: Buffer | undefined, keepOpen: boolean): Promise<Staged | undefined> {
  const after = c.after!
  const abs = join(opts.share, c.path)
  if (!(await ensureParents(opts.share, c.path, opts.guard, dirs))) {
    result.skipped.push(c.path)
    return undefined
  }
  const small = content !== undefined
  const st = small ? lstatSyncOrUndefined(abs) : await lstatOrUndefined(abs)
  if (ignoredHere(opts, c.path, st, after)) {
    result.ignored.push(c.path)
    return undefined
  }
  const replacingKind = c.before !== undefined && c.before.kind !== after.kind
  const expected = replacingKind ? undefined : c.before
  if (after.kind === 'dir') {
    if (st?.isDirectory()) {
      dirs.add(c.path)
      return undefined
    }
    if (st !== undefined) {
      if (opts.guard) { result.skipped.push(c.path); return undefined }
      await rm(abs, { recursive: true, force: true })
    }
    await mkdir(abs).catch((err) => { throw new FileAccessError(c.path, err) })
    dirs.add(c.path)
    return undefined
  }
  const there = await holdsAlready(c.path, st, after, opts)
  if (there !== undefined) {
    result.stat.set(c.path, there)
    return undefined
  }
  if (opts.guard && (!(await holds(abs, st, expected)) || (opts.vouched === true && expected !== undefined && (await vouchedFor(c.path, st, expected, opts)) === undefined))) {
    result.skipped.push(c.path)
    return undefined
  }
  await opts.hooks?.afterPlan?.(c.path)
  if (st?.isDirectory()) await rm(abs, { recursive: true, force: true })
  const tmp = join(opts.tmp, tempName())
  try {
    let made: { stat: Stats; reused?: number; fd?: number }
    if (after.kind === 'link') {
      await symlink(Buffer.from(await mustGet(opts.src, after.cid)), tmp)
      made = { stat: await lstat(tmp) }
    } else if (small) made = writeSmallFile(tmp, after, content, keepOpen)
    else made = await writeFileTo(tmp, after, opts.src, await baseOf(c, st, opts), opts.syncAtEnd !== true)
    return { c, abs, st, tmp, ours: made.stat, reused: made.reused ?? 0, small, ...(made.fd === undefined ? {} : { fd: made.fd }) }
  } catch (err) {
    return await failedWrite(c.path, tmp, err)
  }
}

/** Removes the temp file of a write that failed, and throws what failed as a FileAccessError of `path`. */
async function failedWrite(path: string, tmp: string, err: unknown): Promise<never> {
  await rm(tmp, { force: true }).catch(() => {})
  if (err instanceof FileAccessError) throw err
  throw new FileAccessError(path, err)
}

/**
 * Renames a staged temp file into place, unless the path changed since it
 * was checked (guarded), and records the stat cache entry of what it wrote.
 */
async function placeOne(staged: Staged, opts: ApplyOptions, result: ApplyResult, written?: string[]): Promise<void> {
  // Whatever the new version's size: a small file may replace a big one.
  const old = await holdOpen(staged.abs, staged.st)
  try {
    await placeStaged(staged, opts, result, written)
  } finally {
    await old?.close().catch(() => {})
  }
}

/**
 * The file at `abs`, opened to be held while a new version is renamed
 * over it, when it is a file of HOLD_OLD_BYTES or more. Renaming over the
 * last link of a file frees its blocks and cached pages inside the rename
 * (40 ms for 200 MB on ext4 here, 0.2 s per GiB), so the new version
 * appeared that much later; while the old file is held open, that work
 * moves to its close, after the new version is in place. Undefined when
 * there is nothing to hold or it cannot be opened: then the rename pays.
 */
async function holdOpen(abs: string, st: Stats | undefined): Promise<FileHandle | undefined> {
  if (st === undefined || !st.isFile() || st.size < HOLD_OLD_BYTES) return undefined
  // Non-blocking: a FIFO put at the path since the lstat must not stall the open.
  return open(abs, READ_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined)
}

/** Files of this size and up are held open while they are replaced (holdOpen): below it, freeing costs less than the open. */
const HOLD_OLD_BYTES = 16 * 1024 * 1024

async function placeStaged(staged: Staged, opts: ApplyOptions, result: ApplyResult, written?: string[]): Promise<void> {
  const { c, abs, st, tmp, ours, small } = staged
  const after = c.after!
  try {
    await opts.hooks?.afterWrite?.(c.path)
    // Writing took a while: the user may have saved the file meanwhile.
    // Look again just before the rename, and never replace an edit.
    const now = small ? lstatSyncOrUndefined(abs) : await lstatOrUndefined(abs)
    if (opts.guard && (st === undefined || now === undefined ? st !== now : !sameStat(st, now))) {
      await rm(tmp, { force: true })
      result.skipped.push(c.path)
      return
    }
    if (small) renameSync(tmp, abs)
    else await rename(tmp, abs)
  } catch (err) {
    await failedWrite(c.path, tmp, err)
  }
  await opts.hooks?.afterRename?.(c.path)
  if (after.kind === 'link') return
  written?.push(c.path)
  const now = small ? lstatSyncOrUndefined(abs) : await lstatOrUndefined(abs)
  // Only what we wrote goes into the stat cache: a file edited since the
  // rename must be hashed by the next commit, not taken for ours. (Not
  // sameStat: the rename itself moved the ctime.)
  const unchanged = now !== undefined && now.ino === ours.ino && now.size === ours.size && now.mtimeMs === ours.mtimeMs
  result.stat.set(c.path, unchanged ? toStatEntry(now, after.cid) : null)
  result.reused += staged.reused
  opts.onWrite?.(c.path, after)
}

/**
 * The stat entry of the file at `path` when the stat cache vouches that it
 * holds `after` already, with its size, mtime and mode: it was written
 * ahead of its head (repo/write-ahead.ts), or by an apply that stopped
 * before HEAD moved. Writing it again would change nothing, and the guard
 * would take it for an edit, since it is not the version it replaces.
 */
async function holdsAlready(path: string, st: Stats | undefined, after: DirEntry, opts: ApplyOptions): Promise<StatEntry | undefined> {
  if (after.kind !== 'file' || !matches(st, after)) return undefined
  return vouchedFor(path, st, after, opts)
}

/** The stat cache entry of the file at `path`, when it names `entry` and the file still has the stat it was made with. */
async function vouchedFor(path: string, st: Stats | undefined, entry: DirEntry, opts: ApplyOptions): Promise<StatEntry | undefined> {
  if (opts.statOf === undefined || st === undefined || !st.isFile() || entry.kind !== 'file') return undefined
  const known = await opts.statOf(path)
  return known !== undefined && known.cid === entry.cid.toString() && sameStat(known, st) ? known : undefined
}

/** The version of a file in the folder that its new version can be written from. */
interface Base {
  readonly abs: string
  /** Its stat when the stat cache vouched for it: the open handle must still have it. */
  readonly stat: Stats
  readonly entry: DirEntry
}

/** Files below this size are written from the store alone: planning would cost more than it saves. */
const DELTA_MIN_BYTES = 1024 * 1024
/**
 * Chunks of either version planned at most (about 8 GiB of file, some 13 MB
 * of index each): the index and the plan are held whole, for each of the
 * files written at once.
 */
const DELTA_MAX_CHUNKS = 1 << 17

/**
 * The file at `c.path` when the stat cache vouches that it holds the
 * version `c.before` being replaced, and both versions are big enough to
 * be worth writing one from the other.
 */
async function baseOf(c: PathChange, st: Stats | undefined, opts: ApplyOptions): Promise<Base | undefined> {
  const { before, after } = c
  if (before?.kind !== 'file' || after?.kind !== 'file' || before.size < DELTA_MIN_BYTES || after.size < DELTA_MIN_BYTES) return undefined
  if ((await vouchedFor(c.path, st, before, opts)) === undefined) return undefined
  return { abs: join(opts.share, c.path), stat: st!, entry: before }
}

/** Files read at once by an apply, and the bytes their content may add up to. */
const READ_BATCH_FILES = 64
const READ_BATCH_BYTES = 8 << 20

/** `files` in order, cut into batches of READ_BATCH_FILES files or READ_BATCH_BYTES of small files' content at most. */
function inBatches(files: readonly PathChange[]): PathChange[][] {
  const out: PathChange[][] = []
  let batch: PathChange[] = []
  let bytes = 0
  for (const c of files) {
    const size = isSmallFile(c.after) ? c.after!.size : 0
    if (batch.length === READ_BATCH_FILES || (batch.length > 0 && bytes + size > READ_BATCH_BYTES)) {
      out.push(batch)
      batch = []
      bytes = 0
    }
    batch.push(c)
    bytes += size
  }
  if (batch.length > 0) out.push(batch)
  return out
}

function isSmallFile(entry: DirEntry | undefined): boolean {
  return entry?.kind === 'file' && entry.size < DELTA_MIN_BYTES
}

/**
 * The whole content of each small file in `batch` (undefined for the
 * rest), every chunk checked against its CID: all their chunks are read
 * in one go.
 */
async function readSmallFiles(src: ObjectSource, batch: readonly PathChange[]): Promise<Array<Buffer | undefined>> {
  const leaves = await Promise.all(batch.map(async (c) => (isSmallFile(c.after) ? collectLeaves(src, c.after!) : undefined)))
  const chunks = await readLeaves(src, leaves.flatMap((l) => l ?? []))
  let next = 0
  // Decoding checked that the leaves add up to each file's size.
  return leaves.map((l) => (l === undefined ? undefined : Buffer.concat(chunks.slice(next, (next += l.length)))))
}

/**
 * The leaves of a small file, or undefined when it has more than
 * SMALL_FILE_LEAVES (a peer's tree may link empty chunks without end; such
 * a file is streamed as a big one is).
 */
async function collectLeaves(src: ObjectSource, entry: DirEntry): Promise<Leaf[] | undefined> {
  const out: Leaf[] = []
  for await (const leaf of fileLeaves(src, entry.cid, entry.size)) if (out.push(leaf) > SMALL_FILE_LEAVES) return undefined
  return out
}

/** Leaves a small file read whole may have: LEFT cuts a file under 1 MiB into a few dozen at most. */
const SMALL_FILE_LEAVES = 1024

/**
 * Makes the new temp file `tmp` hold a small file's `bytes`, with its mode
 * and mtime, not durably, and returns its stat; as writeFileTo does, with
 * synchronous calls: each call through the thread pool costs a round trip,
 * which for small files took longer than the call itself (about 48 futex
 * calls per file written). With `keepOpen` the file is left open, and its
 * descriptor returned, for the caller to make durable and close.
 */
function writeSmallFile(tmp: string, entry: DirEntry, bytes: Buffer, keepOpen: boolean): { stat: Stats; fd?: number } {
  const fd = openSync(tmp, 'wx', modeOf(entry))
  let done = false
  try {
    for (let at = 0; at < bytes.length;) {
      const n = writeSync(fd, bytes, at, bytes.length - at, at)
      if (n === 0) throw new Error('the disk took no more bytes')
      at += n
    }
    fchmodSync(fd, modeOf(entry))
    futimesSync(fd, mtimeOf(entry), mtimeOf(entry))
    const stat = fstatSync(fd)
    if (stat.size !== entry.size) throw new Error(`wrote ${stat.size} bytes of ${entry.size}`)
    done = true
    return keepOpen ? { stat, fd } : { stat }
  } finally {
    if (!done || !keepOpen) closeSync(fd)
  }
}

/** The mode a file entry is written with. open()'s is filtered by the umask, so it is set again after: the exec bit must survive. */
function modeOf(entry: DirEntry): number {
  return entry.exec ? 0o755 : 0o644
}

/**
 * A file entry's mtime in seconds, for utimes: half a millisecond in, so
 * float rounding of seconds cannot land the timestamp on the millisecond
 * before (entries store whole milliseconds).
 */
function mtimeOf(entry: DirEntry): number {
  return (entry.mtime + 0.5) / 1000
}

/**
 * Writes `entry`'s content to the new file `tmp` with its mode and mtime,
 * durably when `sync`, and returns the file's stat. Once the file is open,
 * everything goes through its handle. With `base`, what the old version
 * shares with the new one comes from it (`reused` bytes).
 */
async function writeFileTo(tmp: string, entry: DirEntry, src: ObjectSource, base: Base | undefined, sync: boolean): Promise<{ stat: Stats; reused: number }> {
  const mode = modeOf(entry)
  const flush = sync ? new EarlyFlush() : undefined
  const fromBase = base === undefined ? undefined : await writeFromBase(tmp, entry, src, base, mode, flush)
  let fh = fromBase?.fh
  try {
    if (fh === undefined) {
      fh = await open(tmp, 'wx', mode)
      let at = 0
      for await (const chunks of fileChunkGroups(src, entry.cid, entry.size)) {
        const bytes = await writeAllOf(fh, chunks, at)
        at += bytes
        flush?.wrote(fh, bytes)
      }
    }
    // Before the metadata changes, not after: a sync that must also carry
    // them cost twice as much per small file (measured with 10,000 files).
    if (flush !== undefined) {
      await flush.settle()
      await fh.sync()
    }
    await fh.chmod(mode)
    await fh.utimes(mtimeOf(entry), mtimeOf(entry))
    const stat = await fh.stat()
    if (stat.size !== entry.size) throw new Error(`wrote ${stat.size} bytes of ${entry.size}`)
    return { stat, reused: fromBase?.reused ?? 0 }
  } finally {
    // A datasync still running must end before the handle closes; its failure is the one settle() reports.
    await flush?.settle().catch(() => {})
    await fh?.close()
  }
}

/**
 * Starts a datasync of a file being written each time FLUSH_BYTES more are
 * written to it, one at a time, so the disk writes while the rest is
 * produced and the final sync finds little left: for a 1 GiB file that
 * sync alone took half a second. A failure is kept for settle() to
 * report: the kernel tells a failed write-back to one sync call only.
 */
class EarlyFlush {
  private unflushed = 0
  private running: Promise<void> | undefined
  private failure: { error: unknown } | undefined

  wrote(fh: FileHandle, bytes: number): void {
    this.unflushed += bytes
    if (this.unflushed < FLUSH_BYTES || this.running !== undefined) return
    this.unflushed = 0
    this.running = fh.datasync().then(
      () => { this.running = undefined },
      (error: unknown) => {
        this.failure ??= { error }
        this.running = undefined
      }
    )
  }

  /** Waits for the datasync running, if any, and forgets what was written and how it went: the file was given up. */
  async forget(): Promise<void> {
    await this.running
    this.unflushed = 0
    this.failure = undefined
  }

  /** Waits for the datasync running, if any, and throws the first that failed. */
  async settle(): Promise<void> {
    await this.running
    if (this.failure !== undefined) throw this.failure.error
  }
}

/** Bytes written between early datasyncs: enough that each is worth a trip through the thread pool. */
const FLUSH_BYTES = 64 * 1024 * 1024

/**
 * Writes the new version `entry` into `tmp` from the old version `base`
 * and the store; returns the open file and the bytes it took from `base`.
 * When most of the new version sits where it sat in the old one, `tmp`
 * starts as a clone of the old file (a reflink where the filesystem offers
 * one, else a copy inside the kernel) and only the rest is written into it;
 * otherwise the shared ranges are read from the old file and written
 * across. Every chunk taken from the old file is hashed against its CID,
 * as the store's are: one that does not match is read from the store
 * instead. Returns undefined, with `tmp` absent, when the versions share
 * nothing, `base` is no longer the file it was, or anything fails: the
 * caller then writes the file from the store alone, which reports any
 * failure that is not the old file's.
 */
async function writeFromBase(tmp: string, entry: DirEntry, src: ObjectSource, base: Base, mode: number, flush: EarlyFlush | undefined): Promise<{ fh: FileHandle; reused: number } | undefined> {
  let from: FileHandle | undefined
  let fh: FileHandle | undefined
  let made = false
  let done: { fh: FileHandle; reused: number } | undefined
  try {
    const old = await indexChunks(src, base.entry.cid, base.entry.size, DELTA_MAX_CHUNKS)
    if (old === undefined) return undefined
    // The plan is held whole, so the new version is bounded like the old one.
    const runs: Run[] = []
    let chunks = 0
    let shared = 0
    let inPlace = 0
    for await (const run of fileRuns(src, entry.cid, entry.size, old)) {
      chunks += run.leaves.length
      if (chunks > DELTA_MAX_CHUNKS) return undefined
      runs.push(run)
      if (run.kind !== 'old') continue
      shared += run.size
      if (run.from === run.at) inPlace += run.size
    }
    if (shared === 0) return undefined
    from = await open(base.abs, READ_NOFOLLOW)
    if (!sameStat(await from.stat(), base.stat)) return undefined
    // Against the bigger of the two: cloning a huge file to keep a small part of it costs more than it saves.
    const clone = inPlace * 2 >= Math.max(entry.size, base.entry.size)
    // copyFile opens the path again: it must still be the file checked.
    // (What it copies is hashed anyway; this spares copying another one.)
    if (clone && !sameStat(await lstat(base.abs), base.stat)) return undefined
    made = true
    if (clone) {
      await copyFile(base.abs, tmp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE)
      // The clone has the old file's mode, which may not let us write.
      await chmod(tmp, mode)
    }
    fh = await open(tmp, clone ? 'r+' : 'wx', mode)
    // The clone's copied bytes (where the filesystem copied them) go to disk while the rest is hashed.
    if (clone) flush?.wrote(fh, base.entry.size)
    const reused = await writeRuns(fh, from, runs, src, clone, flush)
    if (reused === undefined) return undefined
    if (clone) await fh.truncate(entry.size)
    done = { fh, reused }
    return done
  } catch {
    return undefined
  } finally {
    await from?.close().catch(() => {})
    if (done === undefined) {
      // The caller writes from the store instead, and flushes afresh.
      await flush?.forget()
      await fh?.close().catch(() => {})
      if (made) await rm(tmp, { force: true }).catch(() => {})
    }
  }
}

/**
 * Writes `runs`, the new version's plan, into `fh`: ranges of the old
 * version read from `from` (or, when `fh` is its clone and the range is in
 * place, from `fh` itself), each chunk checked against its CID; new chunks,
 * and any that failed the check, from the store. Returns the bytes taken from the old
 * version, or undefined when it ran short or too many of its chunks failed.
 * RUN_BUFFERS buffers take turns: the next ranges are read, and this one
 * written, while this one is hashed on the main thread, which is then the
 * only bound (for a 1 GiB file shifted by one byte, waiting on each read and
 * write in turn took twice as long as hashing).
 */
async function writeRuns(fh: FileHandle, from: FileHandle, runs: readonly Run[], src: ObjectSource, clone: boolean, flush: EarlyFlush | undefined): Promise<number | undefined> {
  const free: Buffer[] = Array.from({ length: RUN_BUFFERS }, () => Buffer.allocUnsafe(OLD_RUN_BYTES))
  // The reads started, by run index, each with the buffer it holds until its run is written.
  const reads = new Map<number, { bytes: Promise<Buffer | undefined>; buffer: Buffer }>()
  let ahead = 0
  const readAhead = (): void => {
    for (; ahead < runs.length; ahead++) {
      const run = runs[ahead]!
      if (run.kind !== 'old') continue
      const buffer = free.pop()
      if (buffer === undefined) return
      // Never bigger than a buffer with LEFT's chunk sizes; a peer's tree is not held to them.
      const into = run.size <= buffer.length ? buffer.subarray(0, run.size) : Buffer.allocUnsafe(run.size)
      // A failed read counts as running short, at once: a rejection left
      // unhandled while the runs before are written would end the process.
      reads.set(ahead, { bytes: readRange(clone && run.from === run.at ? fh : from, run.from, into).catch(() => undefined), buffer })
    }
  }
  const write = async (bytes: Uint8Array, at: number): Promise<void> => {
    await writeAll(fh, bytes, at)
    flush?.wrote(fh, bytes.length)
  }
  let reused = 0
  let wrong = 0
  try {
    readAhead()
    for (let i = 0; i < runs.length; i++) {
      const run = runs[i]!
      if (run.kind === 'new') {
        let at = run.at
        for (const bytes of await readLeaves(src, run.leaves)) {
          await write(bytes, at)
          at += bytes.length
        }
        continue
      }
      const read = reads.get(i)!
      reads.delete(i)
      const bytes = await read.bytes
      if (bytes === undefined) return undefined
      // Written while it is hashed. Nothing below awaits before the write
      // does, so its failure cannot go unhandled meanwhile.
      const writing = clone && run.from === run.at ? undefined : write(bytes, run.at)
      const failed: Array<{ leaf: Leaf; at: number }> = []
      let off = 0
      for (const leaf of run.leaves) {
        if (verifyBytes(leaf.cid, bytes.subarray(off, off + leaf.size))) reused += leaf.size
        else failed.push({ leaf, at: run.at + off })
        off += leaf.size
      }
      await writing
      free.push(read.buffer)
      readAhead()
      for (const { leaf, at } of failed) {
        if (++wrong > MAX_WRONG_CHUNKS) return undefined
        await write((await readLeaves(src, [leaf]))[0]!, at)
      }
    }
    return reused
  } finally {
    // Nothing may still read into a buffer, or through a handle about to close.
    await Promise.all([...reads.values()].map((r) => r.bytes))
  }
}

/**
 * Old ranges held at once by writeRuns (OLD_RUN_BYTES each): one hashed
 * and written while the next ones are read.
 */
const RUN_BUFFERS = 4

/**
 * Chunks of the old file that may fail their hash before it is given up
 * for the store: one read at a time is fine for a few, and a file that
 * fails many was not the version it seemed.
 */
const MAX_WRONG_CHUNKS = 16

/** Writes all of `bytes` at `at`: a write may take fewer bytes than asked (a full disk) without failing. */
async function writeAll(fh: FileHandle, bytes: Uint8Array, at: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, at + done)
    if (bytesWritten === 0) throw new Error('the disk took no more bytes')
    done += bytesWritten
  }
}

/** Writes all of `chunks`, one after another, from `at`, in one call where it takes them all; returns their length. */
async function writeAllOf(fh: FileHandle, chunks: Uint8Array[], at: number): Promise<number> {
  let total = 0
  for (const c of chunks) total += c.length
  const { bytesWritten } = await fh.writev(chunks, at)
  if (bytesWritten < total) await writeAll(fh, Buffer.concat(chunks).subarray(bytesWritten), at + bytesWritten)
  return total
}

/** This process's prefix for temp names, and a counter: unique without asking the random source per file. */
const TEMP_PREFIX = `${process.pid}-${randomBytes(6).toString('hex')}`
let tempCount = 0

function tempName(): string {
  return `${TEMP_PREFIX}-${(tempCount++).toString(36)}.tmp`
}

/**
 * Makes every parent of `rel` a real directory. A symlink or file in the way
 * is replaced (unguarded) or makes the change skip (guarded): following it
 * could write outside the share folder. `dirs` holds the share paths of
 * directories already found or made real.
 */
async function ensureParents(share: string, rel: string, guard: boolean, dirs: Set<string>): Promise<boolean> {
  for (const dir of uncheckedParents(rel, dirs)) {
    const abs = join(share, dir)
    const st = await lstatOrUndefined(abs)
    if (!st?.isDirectory()) {
      if (st !== undefined) {
        if (guard) return false
        await rm(abs, { recursive: true, force: true })
      }
      // Files written at once may share a new parent (files written ahead
      // come without their directories): one makes it, the others find it.
      try {
        await mkdir(abs)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !(await lstatOrUndefined(abs))?.isDirectory()) {
          if (guard) return false
          throw err
        }
      }
    }
    dirs.add(dir)
  }
  return true
}

/** True when every parent of `rel` is a real directory: removing below a symlink would delete outside the share. */
async function parentsAreDirs(share: string, rel: string, dirs: Set<string>): Promise<boolean> {
  for (const dir of uncheckedParents(rel, dirs)) {
    if (!(await lstatOrUndefined(join(share, dir)))?.isDirectory()) return false
    dirs.add(dir)
  }
  return true
}

/** The parents of `rel` below the deepest one in `dirs`, shallowest first. */
function uncheckedParents(rel: string, dirs: ReadonlySet<string>): string[] {
  const out: string[] = []
  for (let end = rel.lastIndexOf('/'); end > 0; end = rel.lastIndexOf('/', end - 1)) {
    const dir = rel.slice(0, end)
    if (dirs.has(dir)) break
    out.push(dir)
  }
  return out.reverse()
}

/** True when a guarded apply must leave `path` alone: the rules ignore it as what is there or as what was planned. */
function ignoredHere(opts: ApplyOptions, path: string, st: Stats | undefined, entry: DirEntry | undefined): boolean {
  const rules = opts.ignore
  if (!opts.guard || rules === undefined || !rules.active) return false
  return (st !== undefined && rules.ignores(path, st.isDirectory())) || (entry !== undefined && rules.ignores(path, entry.kind === 'dir'))
}

/**
 * True when the directory `abs` (share path `rel`) holds only ignored
 * files, at any depth. Walked with a stack, not recursion, so no depth of
 * folders can overflow it.
 */
async function holdsOnlyIgnored(abs: string, rel: string, rules: IgnoreRules): Promise<boolean> {
  const stack: Array<[string, string]> = [[abs, rel]]
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [dirAbs, dirRel] = next
    for (const d of await readdir(dirAbs, { withFileTypes: true })) {
      const childRel = `${dirRel}/${d.name}`
      if (rules.ignores(childRel, d.isDirectory())) continue
      if (!d.isDirectory()) return false
      stack.push([join(dirAbs, d.name), childRel])
    }
  }
  return true
}

/**
 * True when the stat of what is on disk is what `entry` describes
 * (undefined: nothing there). A file's content is taken on its size and
 * mtime; its exec bit is compared, since a chmod keeps both.
 */
function matches(st: Stats | undefined, entry: DirEntry | undefined): boolean {
  if (entry === undefined) return st === undefined
  if (st === undefined) return false
  switch (entry.kind) {
    case 'dir': return st.isDirectory()
    case 'link': return st.isSymbolicLink()
    case 'file': return st.isFile() && st.size === entry.size && Math.floor(st.mtimeMs) === entry.mtime && isExec(st) === entry.exec
  }
}

/**
 * The guard's check that the path `abs` still holds `entry`, the version
 * being replaced: `matches`, and for a link its target, read again. A link
 * pointed elsewhere may keep its target's length, and its mtime is no
 * part of its entry.
 */
async function holds(abs: string, st: Stats | undefined, entry: DirEntry | undefined): Promise<boolean> {
  if (!matches(st, entry)) return false
  if (entry?.kind !== 'link') return true
  const target = await readlink(abs, { encoding: 'buffer' }).catch(() => undefined)
  return target !== undefined && cidOf(RAW, target).equals(entry.cid)
}

/** lstatOrUndefined without a round trip through the thread pool. */
function lstatSyncOrUndefined(abs: string): Stats | undefined {
  try {
    return lstatSync(abs)
  } catch (err) {
    if (isAbsent(err)) return undefined
    throw err
  }
}

async function lstatOrUndefined(abs: string): Promise<Stats | undefined> {
  try {
    return await lstat(abs)
  } catch (err) {
    if (isAbsent(err)) return undefined
    throw err
  }
}

/** True for the errors of an lstat that finds nothing at the path. */
function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'ENOENT' || code === 'ENOTDIR'
}
