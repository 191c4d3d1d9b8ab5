/**
 * The only importer of chokidar. Watches the share folder (hidden files and
 * folders included, symlinks not followed), reports each changed path as
 * its event arrives, and quiet moments after changes through a Debouncer.
 * It knows nothing of commits or peers.
 */
import { basename, join, relative, sep } from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import { Debouncer, type DebounceOptions } from './debounce.js'

/** What to watch and whom to tell. */
export interface WatchOptions extends DebounceOptions {
  /** Absolute path of the share folder. */
  readonly share: string
  /** Paths (share-relative, posix) not to watch at all. */
  readonly ignores?: (path: string, isDir: boolean) => boolean
  /**
   * Called when the folder went quiet after changes; `paths` are the
   * share-relative paths that changed. Resolving false means "not yet": the
   * paths are kept and the call is repeated after the next quiet period.
   */
  readonly onQuiet: (paths: ReadonlySet<string>) => Promise<boolean>
  /** Called for each changed path (share-relative, posix) as its event arrives. */
  readonly onChange?: (path: string) => void
  /** Called for watcher errors (the watch keeps going). */
  readonly onError: (err: unknown) => void
}

/** A running folder watch. */
export interface FolderWatch {
  /** Resolves once the initial scan is done and events are live, or the watch is closed. */
  readonly ready: Promise<void>
  /** Asks for an `onQuiet` call as if something had changed (to retry work that failed). */
  poke(): void
  close(): Promise<void>
}

/** Starts watching. Events for the share root itself are ignored. */
export function watchFolder(opts: WatchOptions): FolderWatch {
  let changed = new Set<string>()
  const debouncer = new Debouncer(opts, async () => {
    const batch = changed
    changed = new Set()
    let done = false
    try {
      done = await opts.onQuiet(batch)
    } catch (err) {
      opts.onError(err)
    }
    if (!done) {
      for (const p of batch) changed.add(p)
      debouncer.poke()
    }
  })
  const rel = (abs: string): string => relative(opts.share, abs).split(sep).join('/')
  const watcher: FSWatcher = watch(opts.share, {
    ignoreInitial: true,
    followSymlinks: false,
    persistent: true,
    // With atomic, chokidar leaves alone every path that looks like an
    // editor's backup or swap file (`x~`, `.x.swp`), folders included, and
    // so never watches inside a folder called `old~`.
    atomic: false,
    ignored: (abs, stats) => {
      const r = rel(abs)
      return r !== '' && opts.ignores !== undefined && opts.ignores(r, stats?.isDirectory() ?? false)
    }
  })
  const report = (abs: string, check = false): void => {
    const r = rel(abs)
    // Outside the share folder: chokidar watches a symlinked share's parent.
    if (r === '' || r === '..' || r.startsWith('../')) return
    if (check && opts.ignores?.(r, false) === true) return
    opts.onChange?.(r)
    changed.add(r)
    debouncer.poke()
  }
  watcher.on('all', (_event, abs) => report(abs))
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
    report(own ? watched : join(watched, name), true)
  })
  watcher.on('error', opts.onError)
  let closed!: () => void
  const ready = new Promise<void>((resolve) => {
    closed = resolve
    watcher.once('ready', () => resolve())
  })
  return {
    ready,
    poke: () => debouncer.poke(),
    async close() {
      debouncer.close()
      // Closing removes the watcher's listeners: a wait for ready must end too.
      closed()
      await watcher.close()
    }
  }
}
