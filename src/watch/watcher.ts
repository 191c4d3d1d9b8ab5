/**
 * The folder watch: takes reports of changed paths from a source (a watch
 * per folder on Linux, chokidar elsewhere; see source.ts), passes each on
 * as it arrives, and turns them into quiet moments through a Debouncer.
 * Hidden files and folders are watched, symlinks are not followed. It
 * knows nothing of commits or peers.
 */
import { watchWithChokidar } from './chokidar.js'
import { Debouncer, type DebounceOptions } from './debounce.js'
import { watchFolders } from './folders.js'
import type { WatchSource, WatchSourceOptions } from './source.js'

/**
 * Where events come from. `folders`: one node:fs.watch per folder, which
 * on Linux (inotify) reports every child's change to its folder's watch.
 * `chokidar`: a watch per file and folder, for systems where a folder's
 * watch says less.
 */
export type WatchKind = 'folders' | 'chokidar'

/** The kind this system uses. */
export const DEFAULT_WATCH_KIND: WatchKind = process.platform === 'linux' ? 'folders' : 'chokidar'

const SOURCES: Record<WatchKind, (opts: WatchSourceOptions) => WatchSource> = {
  folders: watchFolders,
  chokidar: watchWithChokidar
}

/** What to watch and whom to tell: the share, its ignore rules and where errors go, as a source takes them. */
export interface WatchOptions extends DebounceOptions, Pick<WatchSourceOptions, 'share' | 'ignores' | 'onError'> {
  /**
   * Called when the folder went quiet after changes; `paths` are the
   * share-relative paths that changed. Resolving false means "not yet": the
   * paths are kept and the call is repeated after the next quiet period.
   */
  readonly onQuiet: (paths: ReadonlySet<string>) => Promise<boolean>
  /** Called for each changed path (share-relative, posix) as its event arrives. */
  readonly onChange?: (path: string) => void
  /** Where events come from; DEFAULT_WATCH_KIND unless set. */
  readonly kind?: WatchKind
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
  const report = (path: string): void => {
    // The share itself, or (should a source name one) a path outside it.
    if (path === '' || path === '..' || path.startsWith('../')) return
    opts.onChange?.(path)
    changed.add(path)
    debouncer.poke()
  }
  const source = SOURCES[opts.kind ?? DEFAULT_WATCH_KIND]({ share: opts.share, ignores: opts.ignores, report, onError: opts.onError })
  return {
    ready: source.ready,
    poke: () => debouncer.poke(),
    async close() {
      debouncer.close()
      await source.close()
    }
  }
}
