/**
 * Scanning the share folder into a Merkle snapshot. Directories are walked
 * bottom-up; each file is taken from the stat cache when its size, mtime,
 * ctime and inode match, and hashed otherwise. Children are always written
 * before their parents, so whatever part of a snapshot lands in the store is
 * complete below itself.
 */
import { lstatSync } from 'node:fs'
import { readdir, readlink } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { FileAccessError } from '../errors.js'
import { type DirEntry, RAW, childPath, cidOf, compareNames, encodeNode, isValidName, parseCid } from '../object/index.js'
import type { StatEntry, Store } from '../store/index.js'
import { forEachLimit } from '../limit.js'
import { BlockWriter } from './block-writer.js'
import { hashFile, sameStat } from './hash-file.js'
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
  readonly store: Store | undefined
  readonly statCache: ReadonlyMap<string, StatEntry>
  readonly ignore: IgnoreRules
  /** Called for each file actually read (not taken from the cache). */
  readonly onHash?: (path: string, size: number) => void
  /** Called for entries skipped because they cannot be synced (sockets, bad names). */
  readonly onSkip?: (path: string, why: string) => void
}

/** The result of a snapshot. */
export interface Snapshot {
  readonly root: CID
  /** Stat cache updates: new entries, and null for entries to forget. */
  readonly stat: Map<string, StatEntry | null>
  /** Directory nodes by CID string; a dry run keeps them here instead of the store. */
  readonly dirs: Map<string, Uint8Array>
  readonly filesHashed: number
  readonly bytesHashed: number
  readonly bytesStored: number
}

/** Snapshots the share folder. With a store, every block is stored before this returns. */
export async function snapshot(opts: SnapshotOptions): Promise<Snapshot> {
  const writer = new BlockWriter(opts.store)
  const state = {
    opts, writer, scanStart: Date.now(),
    stat: new Map<string, StatEntry | null>(), dirs: new Map<string, Uint8Array>(),
    seen: new Set<string>(), filesHashed: 0, bytesHashed: 0
  }
  const root = await snapshotDir(state, opts.share, '')
  await writer.flush()
  for (const path of opts.statCache.keys()) if (!state.seen.has(path)) state.stat.set(path, null)
  return { root, stat: state.stat, dirs: state.dirs, filesHashed: state.filesHashed, bytesHashed: state.bytesHashed, bytesStored: writer.bytesWritten }
}

type State = {
  opts: SnapshotOptions; writer: BlockWriter; scanStart: number
  stat: Map<string, StatEntry | null>; dirs: Map<string, Uint8Array>
  seen: Set<string>; filesHashed: number; bytesHashed: number
}

async function snapshotDir(s: State, abs: string, rel: string): Promise<CID> {
  let names: string[]
  try {
    names = await readdir(abs)
  } catch (err) {
    throw new FileAccessError(rel === '' ? '.' : rel, err)
  }
  const entries: DirEntry[] = []
  // Files and links first, in bounded parallel; subdirectories one at a time
  // so the walk's memory follows the depth, not the breadth, of the tree.
  const subdirs: string[] = []
  const work: Array<() => Promise<void>> = []
  for (const name of names) {
    const childRel = childPath(rel, name)
    if (!isValidName(name)) {
      s.opts.onSkip?.(childRel, 'name cannot be synced')
      continue
    }
    work.push(async () => {
      const childAbs = join(abs, name)
      let st: Stats
      try {
        // Synchronous on purpose: an lstat answered from the inode cache takes
        // a few microseconds, and the promise round trip through the thread
        // pool cost five times that, which dominated a no-op commit.
        st = lstatSync(childAbs)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return // deleted while we looked
        throw new FileAccessError(childRel, err)
      }
      if (st.isDirectory()) {
        if (!s.opts.ignore.ignores(childRel, true)) subdirs.push(name)
        return
      }
      if (s.opts.ignore.ignores(childRel, false)) return
      if (st.isFile()) entries.push(await fileEntry(s, childAbs, childRel, name, st))
      else if (st.isSymbolicLink()) entries.push(await linkEntry(s, childAbs, childRel, name))
      else s.opts.onSkip?.(childRel, 'not a regular file, directory or symlink')
    })
  }
  await forEachLimit(work, FILE_CONCURRENCY, (task) => task())
  subdirs.sort(compareNames)
  for (const name of subdirs) {
    const cid = await snapshotDir(s, join(abs, name), childPath(rel, name))
    entries.push({ name, kind: 'dir', cid, size: 0, mtime: 0, exec: false })
  }
  entries.sort((a, b) => compareNames(a.name, b.name))
  const block = encodeNode({ type: 'dir', entries })
  if (s.opts.store === undefined) s.dirs.set(block.cid.toString(), block.bytes)
  await s.writer.add(block)
  return block.cid
}

async function fileEntry(s: State, abs: string, rel: string, name: string, st: Stats): Promise<DirEntry> {
  s.seen.add(rel)
  const exec = (st.mode & 0o100) !== 0
  const cached = s.opts.statCache.get(rel)
  if (cached !== undefined && sameStat(cached, st)) {
    const cid = parseCid(cached.cid)
    // Trusting the cache without a store lookup is sound because entries are
    // only written together with (or after) the objects they name, and gc
    // clears the cache.
    if (cid !== undefined) {
      return { name, kind: 'file', cid, size: st.size, mtime: Math.floor(st.mtimeMs), exec }
    }
  }
  const { root, stat } = await hashFile(abs, rel, s.writer)
  s.opts.onHash?.(rel, stat.size)
  s.filesHashed++
  s.bytesHashed += stat.size
  const racy = Math.max(stat.mtimeMs, stat.ctimeMs) + RACY_MS >= s.scanStart
  s.stat.set(rel, racy ? null : toStatEntry(stat, root.cid))
  return { name, kind: 'file', cid: root.cid, size: root.size, mtime: Math.floor(stat.mtimeMs), exec: (stat.mode & 0o100) !== 0 }
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
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, cid: cid.toString() }
}
