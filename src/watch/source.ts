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
   * ignored. It may be gone, or be '' or outside the share (chokidar
   * watches the share's parent): the caller drops those.
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
