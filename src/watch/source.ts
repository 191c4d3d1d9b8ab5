/**
 * The contract between the folder watch (watcher.ts) and what tells it of
 * changes: one of two sources, a watch per folder (folders.ts) or chokidar
 * (chokidar.ts). A source reports paths where something may have happened;
 * what changed is for the commit to find out.
 */

/** What a source is given. */
export interface WatchSourceOptions {
  /** Absolute path of the share folder. */
  readonly share: string
  /** Paths (share-relative, posix) not to watch at all. */
  readonly ignores?: (path: string, isDir: boolean) => boolean
  /**
   * Called with each share-relative (posix) path an event names, unless
   * ignored. It may be gone, or '' (an event about the share itself),
   * which the caller drops.
   */
  readonly report: (path: string) => void
  /** Called for errors (the watch keeps going; a path may go unwatched). */
  readonly onError: (err: unknown) => void
}

/** A running source. */
export interface WatchSource {
  /** Resolves once every folder is watched, or the source is closed. */
  readonly ready: Promise<void>
  close(): Promise<void>
}

/**
 * The rule for a path whose kind is not known (it is gone, or the event
 * may be about what was there before): ignored only if it would be as a
 * file and as a folder alike.
 */
export function ignoredEitherWay(ignores: WatchSourceOptions['ignores'], path: string): boolean {
  return ignores !== undefined && ignores(path, false) && ignores(path, true)
}
