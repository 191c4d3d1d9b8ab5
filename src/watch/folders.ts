/**
 * Watches a folder tree with one watch per folder: node:fs.watch on each
 * directory, not recursive. On Linux a directory's inotify watch reports
 * what happens to each of its children (created, written, chmodded,
 * deleted, moved) by name, so files need no watch of their own; chokidar
 * takes one per file, which at a million files is more memory and more
 * watches than a system has. This module owns the map of watched folders:
 * it adds a folder's watches the moment the folder appears and drops them
 * when it goes. It reports paths, never decides what changed.
 */
import { lstatSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'
import type { WatchSource, WatchSourceOptions } from './source.js'

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
  const absOf = (rel: string): string => (rel === '' ? opts.share : join(opts.share, rel))

  const failed = (err: unknown): void => {
    const code = (err as NodeJS.ErrnoException).code
    // Gone, or no longer a folder, before its watch was set: the event that
    // said so names it, and a commit looks there.
    if (code === 'ENOENT' || code === 'ENOTDIR') return
    opts.onError(err)
  }

  /**
   * Watches one folder, if it still is one; returns its subfolders to
   * watch. `tell`: report what is in it too (a folder that just appeared).
   */
  const watchOne = (rel: string, tell = false): string[] => {
    if (closed || folders.has(rel)) return []
    const abs = absOf(rel)
    let watcher: FSWatcher
    try {
      // The watch comes first, the listing after: a child made in between is
      // both listed and reported, never neither.
      watcher = watch(abs, { persistent: true }, (event, name) => {
        if (!closed) happened(rel, event, name)
      })
    } catch (err) {
      failed(err)
      return []
    }
    try {
      // fs.watch follows a symlink; a folder swapped for one since it was
      // listed must not be watched (the share root itself may be a symlink).
      const st = rel === '' ? statSync(abs) : lstatSync(abs)
      if (!st.isDirectory()) {
        watcher.close()
        return []
      }
    } catch (err) {
      watcher.close()
      failed(err)
      return []
    }
    watcher.on('error', (err) => {
      unwatch(rel)
      failed(err)
    })
    folders.set(rel, { watcher, children: new Set() })
    if (rel !== '') folders.get(parentOf(rel))?.children.add(rel)
    const below: string[] = []
    try {
      for (const entry of readdirSync(abs, { withFileTypes: true })) {
        const child = rel === '' ? entry.name : `${rel}/${entry.name}`
        const isDir = entry.isDirectory()
        if (opts.ignores?.(child, isDir) === true) continue
        if (isDir) below.push(child)
        if (tell) opts.report(child)
      }
    } catch (err) {
      failed(err)
    }
    return below
  }

  /**
   * Watches `rel`, a folder that just appeared, and every folder below it,
   * before returning, and reports all they hold, as chokidar reports each
   * as added: a commit would find them by walking `rel` anyway, but the
   * watch decides by the files' sizes whether small files go first.
   */
  const watchTree = (rel: string): void => {
    const stack = [rel]
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) stack.push(...watchOne(next, true))
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
      stack.push(...folder.children)
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
    let isDir = folders.has(child)
    // Node calls every event about a folder (made, deleted, moved, even
    // chmodded) a rename. Whatever folder was watched at this name may not
    // be the one there now: it is watched again from scratch, so that a
    // folder deleted and made again (inode numbers are reused) is watched
    // anew. That also closes the folder's own watch before its event about
    // itself, which would name it as if a child of its own name (d/d), is
    // handed out: the kernel queues the parent's event first.
    if (event === 'rename') {
      unwatch(child)
      const now = isFolder(absOf(child))
      if (now && opts.ignores?.(child, true) !== true) watchTree(child)
      isDir ||= now
    }
    if (opts.ignores?.(child, isDir) !== true) opts.report(child)
  }

  const first = async (): Promise<void> => {
    // The first walk yields now and then, so a big folder does not hold up
    // the process; events meanwhile are handled as they come.
    const stack = ['']
    let count = 0
    for (let next = stack.pop(); next !== undefined && !closed; next = stack.pop()) {
      stack.push(...watchOne(next))
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

function isFolder(abs: string): boolean {
  try {
    return lstatSync(abs).isDirectory()
  } catch {
    return false
  }
}
