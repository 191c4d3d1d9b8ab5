/**
 * What a folder watcher has seen change since the last commit: the paths a
 * commit must look at. While a watcher feeds it, a commit scans these paths
 * and the directories above them, and takes everything else from HEAD,
 * so its cost follows the change, not the size of the folder. Pure: the
 * watcher reports, the repo asks and settles.
 *
 * A scan takes a scope and, once its commit has landed, settles it: paths
 * reported again after the scope was taken stay, since the scan may have
 * looked before the change. Until the first settled scan of everything,
 * and again after `everything()` (the watcher lost track, or the ignore
 * rules changed), the scope is the whole folder.
 */
import { IGNORE_FILE } from './ignore.js'

/** What one scan must look at. */
export interface ChangeScope {
  /** The report count when the scope was taken: what it covers. */
  readonly at: number
  /** The paths that may have changed (share-relative); undefined: the whole folder. */
  readonly paths: ReadonlySet<string> | undefined
  /** The ignore rules' text the scan runs under. */
  readonly rules: string
}

/** Paths reported changed, to be looked at by the next commit. */
export class ChangedPaths {
  /** Counts reports; each path keeps the count of its last report. */
  private clock = 0
  private readonly paths = new Map<string, number>()
  /** The count when the whole folder was last asked for; undefined once a scan of it settled. */
  private wholeAt: number | undefined = 0
  /** The ignore rules the last settled scan ran under. */
  private rules: string | undefined

  /** Notes that `path` (share-relative, posix) may have changed. */
  add(path: string): void {
    this.paths.set(path, ++this.clock)
  }

  /** Asks the next scan to look at the whole folder. */
  everything(): void {
    this.wholeAt = ++this.clock
  }

  /** How many paths wait to be looked at. */
  get size(): number {
    return this.paths.size
  }

  /**
   * The scope of a scan starting now under ignore rules `rules` (their
   * text): the whole folder when `whole`, when asked for, when the rules
   * changed since the last settled scan, or when an ignore file is among
   * the paths (rules read from it may not be the ones the paths need).
   */
  take(rules: string, whole = false): ChangeScope {
    const all = whole || this.wholeAt !== undefined || rules !== this.rules || this.paths.has(IGNORE_FILE)
    return { at: this.clock, paths: all ? undefined : new Set(this.paths.keys()), rules }
  }

  /**
   * The commit of a scan of `scope` has landed: forgets what it looked at,
   * except what was reported since and `held` (paths it left at HEAD's
   * version without knowing them: unreadable, deferred, or in transit).
   */
  settle(scope: ChangeScope, held: Iterable<string> = []): void {
    if (scope.paths === undefined) {
      if (this.wholeAt !== undefined && this.wholeAt <= scope.at) this.wholeAt = undefined
      for (const [p, at] of this.paths) if (at <= scope.at) this.paths.delete(p)
      this.rules = scope.rules
    } else {
      for (const p of scope.paths) if ((this.paths.get(p) ?? Infinity) <= scope.at) this.paths.delete(p)
    }
    for (const p of held) this.add(p)
  }
}
