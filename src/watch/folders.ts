/**
 * Watches a folder tree with one watch per folder: node:fs.watch on each
 * directory, not recursive. On Linux a directory's inotify watch reports
 * what happens to each of its children (created, written, chmodded,
 * deleted, moved) by name, so files need no watch of their own; chokidar
 * takes one per file, which at a million files is more memory and more
 * watches than a system has. This module owns the map of watched folders:
 * it adds a folder's watches the moment the folder appears, sets them
 * again whenever an event names the folder, and drops them when it goes.
 * It reports paths, never decides what changed.
 */
import { lstatSync, readdirSync, statSync, watch, type FSWatcher, type Stats } from 'node:fs'
import { basename, join } from 'node:path'
import { type WatchSource, type WatchSourceOptions, ignoredEitherWay } from './source.js'

/** How many folders the first walk watches between two turns of the event loop. */
const FOLDERS_PER_TURN = 256

/** One watched folder. */
interface Folder {
  readonly watcher: FSWatcher
  /** Share-relative paths of its watched subfolders. */
  readonly children: Set<string>
}

/** Starts watching `opts.share` and every folder below it that is not ignored. */
export function watchFolders(opts: WatchSourceOptions): WatchSource {
  const folders = new Map<string, Folder>()
  let closed = false
  /** The share folder as first watched; undefined once said to be gone. */
  let shareWas: Stats | undefined
  const absOf = (rel: string): string => (rel === '' ? opts.share : join(opts.share, rel))

  const failed = (rel: string, err: unknown): void => {
    const code = (err as NodeJS.ErrnoException).code
    // Gone, or no longer a folder, before its watch was set: the event that
    // said so names it, and a commit looks there. Not so the share itself.
    if (rel !== '' && (code === 'ENOENT' || code === 'ENOTDIR')) return
    opts.onError(err)
  }

  /**
   * Watches one folder, if it still is one, and pushes its subfolders onto
   * `below`. `tell`: report what is in it too (a folder that just appeared).
   */
  const watchOne = (rel: string, below: string[], tell = false): void => {
    if (closed || folders.has(rel)) return
    const abs = absOf(rel)
    let stats: Stats
    let watcher: FSWatcher
    try {
      // fs.watch follows a symlink: only a folder is watched (the share
      // itself may be a symlink). Were it swapped between this look and
      // the watch, its parent's event about the swap has it watched again.
      stats = rel === '' ? statSync(abs) : lstatSync(abs)
      if (!stats.isDirectory()) {
        if (rel === '') opts.onError(new Error(`${abs} is not a folder`))
        return
      }
      // The watch comes first, the listing after: a child made in between is
      // both listed and reported, never neither.
      watcher = watch(abs, { persistent: true }, (event, name) => {
        if (!closed) happened(rel, event, name)
      })
    } catch (err) {
      failed(rel, err)
      return
    }
    if (rel === '') shareWas = stats
    watcher.on('error', (err) => {
      unwatch(rel)
      failed(rel, err)
    })
    folders.set(rel, { watcher, children: new Set() })
    if (rel !== '') folders.get(parentOf(rel))?.children.add(rel)
    try {
      for (const entry of readdirSync(abs, { withFileTypes: true })) {
        const child = rel === '' ? entry.name : `${rel}/${entry.name}`
        const isDir = entry.isDirectory()
        if (opts.ignores?.(child, isDir) === true) continue
        if (isDir) below.push(child)
        if (tell) opts.report(child)
      }
    } catch (err) {
      failed(rel, err)
    }
  }

  /**
   * Watches `rel` and every folder below it, before returning. `tell`
   * (for a folder new at its name): report all they hold, as chokidar
   * reports each as added. A commit would find them by walking `rel`
   * anyway, but the watch decides by the files' sizes whether small files
   * go first.
   */
  const watchTree = (rel: string, tell: boolean): void => {
    const stack = [rel]
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) watchOne(next, stack, tell)
  }

  /** Drops the watches of `rel` and of every folder below it. */
  const unwatch = (rel: string): void => {
    if (!folders.has(rel)) return
    if (rel !== '') folders.get(parentOf(rel))?.children.delete(rel)
    const stack = [rel]
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      const folder = folders.get(next)
      if (folder === undefined) continue
      folders.delete(next)
      folder.watcher.close()
      for (const child of folder.children) stack.push(child)
    }
  }

  /** An event of the watch on folder `rel` about its child `name`. */
  const happened = (rel: string, event: string, name: string | null): void => {
    if (name === null) {
      // No name: something happened in the folder, but not said what.
      if (rel !== '') opts.report(rel)
      return
    }
    const child = rel === '' ? name : `${rel}/${name}`
    const ownName = rel !== '' && name === basename(rel)
    const shareName = rel === '' && name === basename(opts.share)
    // Only these need to know what is there now (a file's writes do not).
    const now = event === 'rename' || ownName || shareName ? lstatOrUndefined(absOf(child)) : undefined
    // A folder's event about itself (a chmod, or its deletion, which the
    // kernel queues before its parent's event) comes named by its own name,
    // as if about a child of that name. With no such child there, it is
    // read as about the folder, which a commit then walks whole: right for
    // either reading.
    if (ownName && now === undefined) {
      unwatch(child)
      opts.report(rel)
      return
    }
    if (shareName && now === undefined) checkShare()
    if (event === 'rename') {
      // Node calls every event about a folder a rename: made, deleted and
      // moved, but also chmodded or touched, and the folder at this name
      // may be another one by now on the inode number of the last (ext4
      // reuses them at once). So whatever was watched at this name is
      // dropped and what is there now watched from scratch. Its contents
      // are reported only if no folder was watched here before: the name
      // itself is reported, and a commit walks the folder whole.
      const was = folders.has(child)
      unwatch(child)
      if (now?.isDirectory() === true && opts.ignores?.(child, true) !== true) watchTree(child, !was)
      // What it was, not what is there now, may be what the event is about.
      if (!ignoredEitherWay(opts.ignores, child)) opts.report(child)
      return
    }
    if (opts.ignores?.(child, folders.has(child)) !== true) opts.report(child)
  }

  /**
   * The share folder's own event (named by its name, with no child of that
   * name there): if it is gone or another folder now, nothing in it is
   * watched any more, which only an error makes known.
   */
  const checkShare = (): void => {
    if (shareWas === undefined) return
    let now: Stats | undefined
    try {
      now = statSync(opts.share)
    } catch {
      // Gone: said below.
    }
    if (now !== undefined && now.dev === shareWas.dev && now.ino === shareWas.ino) return
    shareWas = undefined
    opts.onError(new Error(`the share folder ${opts.share} was moved or deleted; its watch has stopped`))
  }

  const first = async (): Promise<void> => {
    // The first walk yields now and then, so a big folder does not hold up
    // the process; events meanwhile are handled as they come.
    const stack = ['']
    let count = 0
    for (let next = stack.pop(); next !== undefined && !closed; next = stack.pop()) {
      watchOne(next, stack)
      if (++count % FOLDERS_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve))
    }
  }
  const ready = first()
  return {
    ready,
    async close() {
      closed = true
      for (const folder of folders.values()) folder.watcher.close()
      folders.clear()
      await ready
    }
  }
}

function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/')
  return slash < 0 ? '' : rel.slice(0, slash)
}

function lstatOrUndefined(abs: string): Stats | undefined {
  try {
    return lstatSync(abs)
  } catch {
    return undefined
  }
}

