/**
 * The only importer of chokidar: the watch source where a folder's watch
 * does not tell of its children (see watcher.ts for where each is used).
 * chokidar watches each file and each folder on its own, hidden ones
 * included, symlinks not followed.
 */
import { realpathSync } from 'node:fs'
import { basename, join, relative, sep } from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import { type WatchSource, type WatchSourceOptions, ignoredEitherWay } from './source.js'

/** Starts chokidar on `opts.share`. */
export function watchWithChokidar(opts: WatchSourceOptions): WatchSource {
  // Not following symlinks, chokidar would not look inside a share folder
  // that is one; given the folder it points to, it does.
  const root = realShare(opts.share)
  const rel = (abs: string): string => relative(root, abs).split(sep).join('/')
  const watcher: FSWatcher = watch(root, {
    ignoreInitial: true,
    followSymlinks: false,
    persistent: true,
    // With atomic, chokidar leaves alone every path that looks like an
    // editor's backup or swap file (`x~`, `.x.swp`), folders included, and
    // so never watches inside a folder called `old~`.
    atomic: false,
    ignored: (abs, stats) => {
      const r = rel(abs)
      if (r === '' || opts.ignores === undefined) return false
      // Asked first without stats.
      if (stats === undefined) return ignoredEitherWay(opts.ignores, r)
      return opts.ignores(r, stats.isDirectory())
    }
  })
  watcher.on('all', (_event, abs) => opts.report(rel(abs)))
  // chokidar passes on only some events: not a change of mode alone (its
  // mtime check), nor a change within 50 ms of the last, nor anything at an
  // editor's backup or swap name (`x~`, `.x.swp`). Every raw event
  // names a path where something happened, which is all a commit that
  // looks only at changed paths needs. A folder's watch names the child;
  // a file's names the file itself, by its own name. (So a change in a
  // folder's child of the folder's own name, `photos/photos`, names the
  // folder, and the commit walks the whole folder: correct, if slower.)
  watcher.on('raw', (_event, name, details) => {
    const watched = (details as { watchedPath?: unknown } | undefined)?.watchedPath
    if (typeof watched !== 'string') return
    const own = typeof name !== 'string' || name === '' || basename(watched) === name
    const path = rel(own ? watched : join(watched, name))
    // chokidar checked its own events against the rules; these it did not,
    // and what is gone has no kind to check as.
    if (!ignoredEitherWay(opts.ignores, path)) opts.report(path)
  })
  watcher.on('error', opts.onError)
  let closed!: () => void
  const ready = new Promise<void>((resolve) => {
    closed = resolve
    watcher.once('ready', () => resolve())
  })
  return {
    ready,
    async close() {
      // Closing removes the watcher's listeners: a wait for ready must end too.
      closed()
      await watcher.close()
    }
  }
}

function realShare(share: string): string {
  try {
    return realpathSync(share)
  } catch {
    return share
  }
}
