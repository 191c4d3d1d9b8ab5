/**
 * The repository facade: opens a LEFT folder and offers every local
 * operation (commit, status, log, diff, checkout, restore, fsck, gc, and
 * integrating a fetched head). It wires the store, worktree, tree and
 * history modules together, serializes every operation that moves HEAD or
 * writes the share folder, and keeps the store to itself: HEAD moves only
 * through these methods.
 */
import { type Stats, lstatSync } from 'node:fs'
import { readdir, rm, stat } from 'node:fs/promises'
import { isAbsolute, join, relative as relativePath, resolve as resolvePath, sep } from 'node:path'
import type { CID } from 'multiformats/cid'
import { CheckoutUnfinishedError, DirtyWorktreeError, PathNotFoundError, UnknownRevisionError, UsageError, hasCode } from '../errors.js'
import { type Block, type Commit, type DirEntry, MAX_NAME_BYTES, OBJECT_FORMAT, encodeNode, parseCid } from '../object/index.js'
import { type ObjectStore, type StatEntry, Store } from '../store/index.js'
import { type Change, type DiffSummary, countChange, diffTrees, sameEntryOrAbsent } from '../tree/diff.js'
import { readDir } from '../tree/directory.js'
import { lookupPath } from '../tree/lookup.js'
import { type ObjectSource, loadCommit, overlaySource } from '../tree/source.js'
import { generationAfter, isAncestor, walkLog } from '../history/ancestry.js'
import { type Dated, type RetentionPolicy, checkPolicy, keptBy } from '../history/retention.js'
import { type LogEntry, readLog } from '../history/log.js'
import { Pathspec } from '../tree/pathspec.js'
import type { Conflict } from '../history/merge.js'
import { conflictName, parseConflictName } from '../history/conflict-name.js'
import { mergeHeads } from '../history/merge-heads.js'
import { HistoryIndex } from '../history/history-index.js'
import { type IgnoreRules, NO_RULES, loadIgnoreRules } from '../worktree/ignore.js'
import { type ApplyHooks, type ApplyResult, type PathChange, applyChanges, applyWindows, checkSpace, syncPaths } from '../worktree/materialize.js'
import { type SkipKind, type Snapshot, snapshot } from '../worktree/snapshot.js'
import type { ChangedPaths } from '../worktree/changed-paths.js'
import { type ShareIdentity, checkShareIdentity, shareIdentity } from '../worktree/share-identity.js'
import { sameStat } from '../worktree/hash-file.js'
import { type Config, writeConfig } from './config.js'
import { type InitOptions, type Layout, exists, initLayout, openLayout } from './layout.js'
import { type ContentStats, type FsckReport, contentStats, fsck, gc } from './maintenance.js'
import { type MigrateResult, migrateStore } from './migrate.js'
import { Mutex, SharedLock } from './mutex.js'
import { InTransit, type Transit, WriteAhead } from './write-ahead.js'
import { type BlockSource, type FetchProgress, fetchContent } from '../sync/content.js'

export type { LogEntry } from '../history/log.js'

/** Counts of changed files, links and (empty or not) directories excluded. */
export interface ChangeSummary {
  readonly added: number
  readonly modified: number
  readonly deleted: number
}

/** One move of HEAD, as `left reflog` shows it, newest first. */
export interface ReflogEntry {
  /** 0 for the newest: `HEAD@{n}` names it. */
  readonly index: number
  readonly cid: CID
  /** When HEAD moved there (ms since the epoch). */
  readonly time: number
}

/** What `log` shows; see history/log.ts for the path rule. */
export interface LogQuery {
  /** Start here (a revision) instead of HEAD. */
  readonly from?: string
  /** Start from every ref, the reflog included, so no commit is out of reach. */
  readonly all?: boolean
  readonly limit?: number
  /** Share-relative pathspecs (see tree/pathspec.ts); none means every path. */
  readonly paths?: readonly string[]
}

/** What `commit` made. */
export interface CommitResult {
  readonly cid: CID
  readonly message: string
  readonly summary: ChangeSummary
  readonly filesHashed: number
  readonly bytesHashed: number
}

/** Progress hooks for long operations; each operation calls the ones that fit it. */
export interface Progress {
  /** commit: a file was read and hashed. */
  onHash?: (path: string, size: number) => void
  /**
   * commit: asked of each file that must be read; true leaves it out of
   * this commit (it keeps HEAD's version, or stays out if new), for the
   * next commit to take.
   */
  later?: (path: string, size: number) => boolean
  /**
   * commit: look only where the folder watcher saw changes (see
   * `Repo.followChanges`); without it, or without a watcher, the whole
   * folder is scanned.
   */
  changedOnly?: boolean
  onSkip?: (path: string, why: string, kind: SkipKind) => void
  /** checkout, restore: the files and bytes about to be written, once, before the first. */
  onPlan?: (files: number, bytes: number) => void
  /** checkout, restore: a file was written into the share folder. */
  onWrite?: (path: string, size: number) => void
  /** fsck, gc: an object was read (its size in bytes). */
  onObject?: (bytes: number) => void
}

/** What integrating a remote head did. */
export interface IntegrateResult {
  /** Our head before and after. */
  readonly before: CID | undefined
  readonly after: CID | undefined
  readonly mode: 'none' | 'fast-forward' | 'merge'
  readonly conflicts: readonly Conflict[]
  /** Paths one side deleted and the other edited: the edit was kept (see mergeTrees). */
  readonly editsKept: readonly string[]
  /** Files written into the share folder. */
  readonly written: number
  /** Bytes of those files copied from the versions they replaced rather than read from the store. */
  readonly reused: number
  /** Paths left alone because they were edited while we worked. */
  readonly skipped: readonly string[]
  /** Files and links the incoming change removed from the folder. */
  readonly deleted: readonly string[]
}

/** What `checkout` or `restore` did. */
export interface UpdateResult {
  /** Paths changed. */
  readonly changes: number
  /**
   * Paths left as they were: ignored here, folders kept for ignored files
   * inside, or edited while the folder was updated. Empty with `force`.
   */
  readonly kept: readonly string[]
  /** Bytes of files written that were copied from the versions they replaced rather than read from the store. */
  readonly reused: number
}

/**
 * The object store as a peer session needs it: read objects, add objects,
 * stage fetched nodes. It cannot move refs or touch the stat cache: HEAD
 * moves only through Repo operations, under the repo's lock.
 */
export type RepoObjects = Pick<ObjectStore, 'get' | 'has' | 'hasMany' | 'write' | 'stage' | 'getStaged'>

/**
 * How many times integrate starts over when paths are edited while it
 * updates the folder. After that, HEAD moves and the edits are committed on
 * top by the next commit, as before; their paths are reported as skipped.
 */
const INTEGRATE_ROUNDS = 3

/** Each repo's store, for tests and tools inside LEFT (see `storeOf`); not part of the public API. */
const stores = new WeakMap<Repo, Store>()

/**
 * The whole store of `repo`, for LEFT's own tests and tools. Writing refs
 * through it bypasses the repo's lock; library users get `repo.objects`.
 */
export function storeOf(repo: Repo): Store {
  return stores.get(repo)!
}

/** An open LEFT folder. Close it to release the store lock. */
export class Repo {
  /** Serializes operations that move HEAD or write the share folder. */
  private readonly mutex = new Mutex()
  private readonly configWrites = new Mutex()
  /**
   * Fetches write objects no ref reaches yet, outside the mutex; gc would
   * delete them (and empty staging under them), so it waits for fetches to
   * end and keeps new ones waiting (see `fetching`).
   */
  private readonly fetches = new SharedLock()
  /** See RepoObjects. */
  readonly objects: RepoObjects
  /** HEAD's history as a set: see inHistory. */
  private readonly history: HistoryIndex
  /** Files written ahead of the heads bringing them: see write-ahead.ts. */
  private readonly inTransit = new InTransit()
  /** What the folder watcher saw change, while one feeds it: see followChanges. */
  private changes: ChangedPaths | undefined

  private constructor(
    readonly layout: Layout,
    private current: Config,
    private readonly store: Store,
    /** The share folder as this repo opened it: a scan of another folder at its path would read every file as deleted. */
    private readonly shareWas: ShareIdentity | undefined
  ) {
    stores.set(this, store)
    this.history = new HistoryIndex(store)
    this.objects = {
      get: (cid) => store.get(cid),
      has: (cid) => store.has(cid),
      hasMany: (cids) => store.hasMany(cids),
      stage: (block) => store.stage(block),
      getStaged: (cid) => store.getStaged(cid),
      // Objects only: refs, the stat cache and its clearing are dropped.
      write: (w) => store.write({
        ...(w.blocks ? { blocks: w.blocks } : {}),
        ...(w.commits ? { commits: w.commits } : {}),
        ...(w.unstage ? { unstage: w.unstage } : {}),
        ...(w.thinIfNew ? { thinIfNew: w.thinIfNew } : {}),
        ...(w.unthin ? { unthin: w.unthin } : {})
      })
    }
  }

  /**
   * From now on, commits asked for `changedOnly` and the commit of local
   * edits before an integrate scan only the paths `changes` holds, and the
   * directories above them (worktree/changed-paths.ts). A watcher whose
   * events are live may feed it. So may no one, when an edit elsewhere may
   * wait for the next whole commit (a `left serve` or a one-shot `left
   * sync`): the apply's guard still finds an edit to a path it writes by
   * its stat, and adds it here for the next round. Undefined: every commit scans the
   * whole folder again.
   */
  followChanges(changes: ChangedPaths | undefined): void {
    this.changes = changes
  }

  /** Resolves once every HEAD-moving operation started so far has ended. */
  idle(): Promise<void> {
    return this.mutex.run(async () => {})
  }

  /** The folder's configuration (key, peer id, remembered listen address and peers). */
  get config(): Config {
    return this.current
  }

  /** Remembers settings in `.left/config` (atomically) for the next run; calls apply in order. */
  remember(patch: Partial<Pick<Config, 'listen' | 'peers' | 'paused' | 'knownPeers' | 'retention' | 'gui' | 'guiToken'>>): Promise<void> {
    // Each write starts from the one before, so concurrent patches all land.
    return this.configWrites.run(async () => {
      const next: Config = { ...this.current, ...patch }
      await writeConfig(this.layout.leftDir, next)
      this.current = next
    })
  }

  /** Creates a LEFT folder in `dir` (see `left init`). */
  static async init(dir: string, options: InitOptions = {}): Promise<Repo> {
    const { layout, config } = await initLayout(dir, options)
    return new Repo(layout, config, await Store.open(layout.storeDir, { create: true }), await shareIdentity(layout.share))
  }

  /** Reads the config of the LEFT folder at or above `dir` without opening (or locking) the store. */
  static async readConfig(dir: string): Promise<Config> {
    return (await openLayout(dir)).config
  }

  /** The paths of the LEFT folder at or above `dir`, without opening (or locking) the store. */
  static async layoutOf(dir: string): Promise<Layout> {
    return (await openLayout(dir)).layout
  }

  /** Opens the LEFT folder at or above `dir`. */
  static async open(dir: string): Promise<Repo> {
    const { layout, config } = await openLayout(dir)
    const store = await Store.open(layout.storeDir)
    // Holding the store lock means no other left process is writing temp files.
    for (const name of await readdir(layout.tmpDir)) await rm(join(layout.tmpDir, name), { recursive: true, force: true })
    return new Repo(layout, config, store, await shareIdentity(layout.share))
  }

  /**
   * Rewrites the folder's store from an older object format into the
   * current one (see migrate.ts), then runs gc to drop the old objects.
   * Undefined when the store is in the current format already.
   */
  static async migrate(dir: string): Promise<(MigrateResult & { gc: { removed: number; kept: number }; shortHead?: string }) | undefined> {
    const { layout } = await openLayout(dir)
    const store = await Store.open(layout.storeDir, { olderFormat: true })
    let result: MigrateResult
    try {
      if (store.format === OBJECT_FORMAT) return undefined
      result = await migrateStore(store, store.format)
    } finally {
      await store.close()
    }
    const repo = await Repo.open(dir)
    try {
      const swept = await repo.gc()
      return { ...result, gc: swept, ...(result.head ? { shortHead: await repo.shortId(result.head) } : {}) }
    } finally {
      await repo.close()
    }
  }

  /** Releases the store. */
  async close(): Promise<void> {
    await this.store.close()
  }

  /** The absolute path of the share folder. */
  get share(): string {
    return this.layout.share
  }

  /** The current head commit, or undefined before the first commit. */
  head(): Promise<CID | undefined> {
    return this.store.getRef('HEAD')
  }

  /**
   * Resolves a revision: `HEAD`, `HEAD~N`, `HEAD^`, `HEAD@{N}` (the reflog),
   * a full commit CID, a unique prefix of one, or a short id (a unique
   * prefix of what follows `bafyrei`), at least MIN_ID_PREFIX characters.
   */
  async resolve(rev: string): Promise<CID> {
    const m = /^(.*?)((?:[~^]\d*)*)$/.exec(rev.trim())!
    const base = m[1]!
    let cid: CID | undefined
    const reflogIndex = /^(?:HEAD)?@\{(\d+)\}$/.exec(base)
    if (base === 'HEAD' || base === '@') {
      cid = await this.head()
    } else if (reflogIndex !== null) {
      cid = (await this.reflog())[Number(reflogIndex[1])]?.cid
    } else if (base.length > 0) {
      const full = parseCid(base)
      if (full !== undefined && (await this.store.findCommits(full.toString(), 1)).length === 1) cid = full
      else if (base.length >= MIN_ID_PREFIX) {
        // A short id leaves out the `bafyrei` every commit id starts with;
        // a prefix of the full id works too.
        const found = new Set(await this.store.findCommits(base, 2))
        if (!base.startsWith(COMMIT_ID_PREFIX)) for (const id of await this.store.findCommits(COMMIT_ID_PREFIX + base, 2)) found.add(id)
        if (found.size > 1) throw new UnknownRevisionError(rev, 'ambiguous')
        cid = found.size === 1 ? parseCid([...found][0]!) : undefined
      }
    }
    if (cid === undefined) throw new UnknownRevisionError(rev)
    // As in git: `~N` walks N first parents, `^N` takes the N-th parent
    // (`^` alone is `^1`, `^0` the commit itself).
    for (const step of m[2]!.match(/[~^]\d*/g) ?? []) {
      const n = step.length > 1 ? Number(step.slice(1)) : 1
      if (step[0] === '^') {
        if (n === 0) continue
        const parent: CID | undefined = (await loadCommit(this.store, cid)).parents[n - 1]
        if (parent === undefined) throw new UnknownRevisionError(rev)
        cid = parent
        continue
      }
      for (let i = 0; i < n; i++) {
        const parent: CID | undefined = (await loadCommit(this.store, cid)).parents[0]
        if (parent === undefined) throw new UnknownRevisionError(rev)
        cid = parent
      }
    }
    return cid
  }

  /** The commit `cid` names (it must be one the store holds). */
  commitOf(cid: CID): Promise<Commit> {
    return loadCommit(this.store, cid)
  }

  /** The ignore rules in force: `.leftignore` in the share folder, then `.left/ignore`. */
  ignoreRules(): Promise<IgnoreRules> {
    return loadIgnoreRules(this.share, this.layout.leftDir)
  }

  /**
   * Snapshots the share folder; with `store` false nothing is written.
   * Ignored and unreadable paths keep HEAD's entries.
   */
  async scan(store: boolean, progress: Progress = {}, rules?: IgnoreRules, only?: ReadonlySet<string>): Promise<Snapshot> {
    // Every commit, apply and status looks at the folder through here
    // first; and looks again after, in case the folder changed meanwhile.
    await checkShareIdentity(this.share, this.shareWas)
    const snap = await snapshot({
      ...(only ? { only } : {}),
      share: this.share,
      store: store ? this.store : undefined,
      stats: this.store,
      ignore: rules ?? (await this.ignoreRules()),
      base: { src: this.store, root: await this.headTree() },
      ...(this.inTransit.size > 0 ? { inTransit: (path: string) => this.inTransit.get(path) } : {}),
      ...(progress.later ? { later: progress.later } : {}),
      ...(progress.onHash ? { onHash: progress.onHash } : {}),
      ...(progress.onSkip ? { onSkip: progress.onSkip } : {})
    })
    await checkShareIdentity(this.share, this.shareWas)
    return snap
  }

  /** Commits the share folder. Returns undefined when nothing changed since HEAD. */
  commit(message?: string, progress: Progress = {}): Promise<CommitResult | undefined> {
    return this.mutex.run(() => this.commitLocked(message, progress))
  }

  /** `commit` for callers that already hold the mutex. */
  private async commitLocked(message?: string, progress: Progress = {}): Promise<CommitResult | undefined> {
    const unfinished = await this.unfinishedCheckout()
    if (unfinished !== undefined) throw new CheckoutUnfinishedError(unfinished.id, unfinished.forced)
    const head = await this.head()
    const parent = head === undefined ? undefined : await loadCommit(this.store, head)
    const rules = await this.ignoreRules()
    const changes = this.changes
    const scope = changes?.take(rules.text, progress.changedOnly !== true)
    const snap = await this.scan(true, progress, rules, scope?.paths)
    // What the scan looked at is HEAD's now, or will be once this commit lands.
    const settle = (): undefined => { if (scope !== undefined) changes!.settle(scope, snap.held) }
    if (parent?.tree.equals(snap.root) === true) return settle()
    const tally = new ChangeTally()
    for await (const c of diffTrees(this.store, parent?.tree, snap.root)) tally.add(c)
    // A first commit of an empty folder: nothing to record.
    if (parent === undefined && tally.changes === 0) return settle()
    const summary = tally.summary
    const text = message ?? tally.message()
    const block = encodeNode({
      type: 'commit',
      tree: snap.root,
      parents: head === undefined ? [] : [head],
      generation: generationAfter(parent === undefined ? [] : [parent]),
      author: this.config.peerId,
      time: Math.max(Date.now(), (parent?.time ?? 0) + 1),
      message: text
    })
    await this.moveHead(block.cid, { blocks: [block], commits: [block.cid] })
    settle()
    return { cid: block.cid, message: text, summary, filesHashed: snap.filesHashed, bytesHashed: snap.bytesHashed }
  }

  /**
   * Points HEAD at `cid` in one atomic write with whatever else must land
   * with it, and records the move in the reflog so no commit ever becomes
   * unreachable (gc keeps everything the reflog names).
   */
  private async moveHead(cid: CID, extra: { blocks?: Block[]; commits?: CID[]; stat?: Map<string, unknown>; refs?: Record<string, CID | null> } = {}): Promise<void> {
    const reflogName = `${REFLOG}${String(Date.now()).padStart(15, '0')}-${cid.toString().slice(-8)}`
    await this.store.write({
      ...(extra.blocks ? { blocks: extra.blocks } : {}),
      ...(extra.commits ? { commits: extra.commits } : {}),
      ...(extra.stat ? { stat: extra.stat as ApplyResult['stat'] } : {}),
      refs: { ...extra.refs, HEAD: cid, [reflogName]: cid },
      // HEAD's content is here (it was just written out or committed): keep it.
      unthin: [cid]
    })
  }

  /** The commit a checkout was making when it was cut short (its short id), and whether it was forced, until a checkout finishes (see CHECKOUT). */
  async unfinishedCheckout(): Promise<{ id: string; forced: boolean } | undefined> {
    const pending = await this.pendingCheckout()
    return pending === undefined ? undefined : { id: await this.shortId(pending.target), forced: pending.forced }
  }

  private async pendingCheckout(): Promise<{ target: CID; forced: boolean } | undefined> {
    const plain = await this.store.getRef(CHECKOUT)
    if (plain !== undefined) return { target: plain, forced: false }
    const forced = await this.store.getRef(CHECKOUT_FORCED)
    return forced === undefined ? undefined : { target: forced, forced: true }
  }

  /**
   * What a checkout cut short may have changed: the diff from HEAD to its
   * target, and the paths to sync before this run's mark replaces its
   * mark. A forced one may also have rewritten any path the target has
   * (edits it reverted, files it replaced), so all of those are synced too.
   */
  private async cutPaths(headTree: CID | undefined, pending: { target: CID; forced: boolean }): Promise<{ diff: Change[]; paths: string[] }> {
    const tree = (await loadCommit(this.store, pending.target)).tree
    const diff = await collect(diffTrees(this.store, headTree, tree))
    const paths = diff.map((c) => c.path)
    if (pending.forced) for await (const c of diffTrees(this.store, undefined, tree)) paths.push(c.path)
    return { diff, paths }
  }

  /** Changes in the share folder since HEAD (nothing is stored). */
  async status(): Promise<Change[]> {
    const tree = await this.headTree()
    const snap = await this.scan(false)
    return collect(diffTrees(overlaySource(this.store, snap.dirs), tree, snap.root))
  }

  /** Compares two commits, or a commit (default HEAD) and the share folder. */
  async diff(from?: string, to?: string): Promise<Change[]> {
    const fromTree = from === undefined ? await this.headTree() : (await loadCommit(this.store, await this.resolve(from))).tree
    if (to !== undefined) {
      return collect(diffTrees(this.store, fromTree, (await loadCommit(this.store, await this.resolve(to))).tree))
    }
    const snap = await this.scan(false)
    return collect(diffTrees(overlaySource(this.store, snap.dirs), fromTree, snap.root))
  }

  /** Commits newest first, each with its changes against every parent (see LogQuery). */
  async log(query: LogQuery = {}): Promise<LogEntry[]> {
    const heads: CID[] = []
    // Loops, not push(...list), here and below: a reflog or a restored
    // directory can hold more items than a call can take arguments.
    if (query.all === true) for (const [, cid] of (await this.store.listRefs()).reverse()) heads.push(cid)
    else {
      const head = query.from === undefined ? await this.head() : await this.resolve(query.from)
      if (head !== undefined) heads.push(head)
    }
    const paths = query.paths === undefined ? undefined : new Pathspec(query.paths)
    return collect(readLog(this.store, heads, { ...(query.limit !== undefined ? { limit: query.limit } : {}), ...(paths ? { paths } : {}) }))
  }

  /** Every place HEAD has been, newest first: no commit is ever out of reach. */
  async reflog(): Promise<ReflogEntry[]> {
    const refs = await this.store.listRefs(REFLOG)
    return refs.reverse().map(([name, cid], index) => ({ index, cid, time: Number(/^reflog\/(\d+)-/.exec(name)?.[1] ?? 0) }))
  }

  /**
   * The shortest abbreviation of a commit id that names only it, at least
   * SHORT_ID_LENGTH characters, taken after the `bafyrei` every commit id
   * starts with (that part never varies). `resolve` accepts it back.
   */
  async shortId(cid: CID): Promise<string> {
    const full = cid.toString()
    const skip = full.startsWith(COMMIT_ID_PREFIX) ? COMMIT_ID_PREFIX.length : 0
    for (let n = SHORT_ID_LENGTH; skip + n < full.length; n++) {
      if ((await this.store.findCommits(full.slice(0, skip + n), 2)).length < 2) return full.slice(skip, skip + n)
    }
    return full.slice(skip)
  }

  /** True when something (a file, a folder, a link) is at share-relative `rel` in the share folder now. */
  inShare(rel: string): Promise<boolean> {
    return exists(join(this.share, rel), false)
  }

  /**
   * The share-relative path a user means by `arg`, typed in directory `cwd`:
   * relative to `cwd` when that lies inside the share folder (as git reads
   * paths), and a path from the folder root that reaches into it, such as
   * `share/a.txt`, works too. From outside the share folder, any other path
   * is read as share-relative, as LEFT always has. Throws UsageError for a
   * path that leaves the share folder.
   */
  sharePath(cwd: string, arg: string): string {
    const abs = resolvePath(cwd, arg)
    const inside = (p: string): boolean => p === this.share || p.startsWith(this.share + sep)
    if (inside(abs)) return relativePath(this.share, abs).split(sep).join('/')
    if (inside(resolvePath(cwd)) || isAbsolute(arg) || normalizeRel(arg).split('/').includes('..')) {
      throw new UsageError(`${arg} is outside the share folder ${this.share}`)
    }
    return normalizeRel(arg)
  }

  /**
   * Makes the share folder the snapshot `rev` and points HEAD at it.
   * Refuses while the folder has uncommitted changes unless `force`. Without
   * `force`, ignored paths are left as they are, and a folder that still
   * holds ignored files stays; with it, the folder becomes exactly `rev`.
   */
  checkout(rev: string, force = false, progress: Progress = {}, from: ContentFrom = {}): Promise<UpdateResult & { cid: CID }> {
    return this.mutex.run(async () => {
      const target = await this.resolve(rev)
      const targetTree = (await loadCommit(this.store, target)).tree
      const headTree = await this.headTree()
      const rules = await this.ignoreRules()
      // With force, the folder may hold files HEAD lacks that already match
      // the target: they stay as they are, so their content is stored now
      // (HEAD's content must be in the store). Without force it is HEAD's.
      const snap = await this.scan(force, {}, rules)
      const src = overlaySource(this.store, snap.dirs)
      // A checkout cut short, and the paths it may have changed.
      const pending = await this.pendingCheckout()
      const cut = pending === undefined ? undefined : await this.cutPaths(headTree, pending)
      const finishing = !force && pending?.forced === false && pending.target.equals(target)
      if (!force && !finishing) {
        const dirty = await collect(diffTrees(src, headTree, snap.root))
        if (dirty.length > 0) throw new DirtyWorktreeError(dirty.length)
      }
      // All of the target's content must be here once it is HEAD, not only
      // what the folder lacks; HEAD's is, so the diff from it says what may not be.
      await fetchContent(diffTrees(this.store, headTree, targetTree), this.store, { ...from })
      let wanted = await collect(diffTrees(src, snap.root, targetTree))
      const edited: string[] = []
      if (finishing) {
        // Only what the cut run could have left is written over; anything
        // else is an edit made since, kept as an edit on top of the target.
        const heads = new Map(cut!.diff.map((c) => [c.path, c.before]))
        wanted = wanted.filter((c) => {
          const left = heads.has(c.path) && leftByCheckout(c.before, heads.get(c.path), c.after)
          if (!left && heads.has(c.path)) edited.push(c.path)
          return left
        })
      }
      const { changes, done, touched } = await this.throughTransit(wanted)
      // The cut run's own writes never reached its durability point: they
      // do now, before this run's mark replaces its mark.
      if (cut !== undefined) await syncPaths(this.share, cut.paths)
      // What it writes is the target's, so its content is here now. Each
      // batch of files is fsynced while later ones are written (syncAtEnd),
      // so until HEAD moves a power cut can leave some torn: the mark says
      // so, and commit refuses until a checkout finishes
      // (docs/architecture.md). gc must keep the target's content meanwhile,
      // even if it was forgotten.
      const mark = (): Promise<void> => this.store.write({ refs: { [force ? CHECKOUT_FORCED : CHECKOUT]: target, [force ? CHECKOUT : CHECKOUT_FORCED]: null }, unthin: [target] })
      const applied = await this.apply(changes, { guard: !force, rules, syncAtEnd: true, beforeWrite: mark, ...progressOf(changes, progress) })
      for (const [p, e] of done) applied.stat.set(p, e)
      await this.moveHead(target, { stat: applied.stat, refs: { [CHECKOUT]: null, [CHECKOUT_FORCED]: null } })
      for (const p of touched) this.inTransit.delete(p)
      return { cid: target, changes: changes.length + done.size, kept: [...applied.ignored, ...applied.skipped, ...edited], reused: applied.reused }
    })
  }

  /**
   * Brings back one path (file or directory) as it is in `source` (default
   * HEAD). Uncommitted edits to files the source has are overwritten, as
   * with `git restore`; but unless `force`, nothing that is neither in HEAD
   * nor in the source is deleted (a folder to be replaced by a file must
   * hold only committed files), and ignored paths inside a restored folder
   * stay as they are. Naming an ignored path restores it.
   */
  restore(path: string, source = 'HEAD', force = false, progress: Progress = {}, from: ContentFrom = {}): Promise<UpdateResult> {
    return this.mutex.run(async () => {
      const rel = normalizeRel(path)
      const commit = await this.resolve(source)
      const tree = (await loadCommit(this.store, commit)).tree
      const wanted = await lookupPath(this.store, tree, rel)
      if (wanted === undefined || rel === '') throw new PathNotFoundError(path, source)
      const loaded = await this.ignoreRules()
      const rules = loaded.ignores(rel, wanted.kind === 'dir') ? NO_RULES : loaded
      const snap = await this.scan(false, {}, rules)
      const src = overlaySource(this.store, snap.dirs)
      const current = await lookupPath(src, snap.root, rel)
      let changes: PathChange[]
      if (wanted.kind === 'dir' && current?.kind === 'dir') {
        // Like `git restore`, bring back what the source has and leave files
        // the source never had alone: deleting them would lose uncommitted work.
        // Paths under a replaced entry (a dir that must become a file) still go.
        const all = await collect(diffTrees(src, current.cid, wanted.cid, rel))
        const replaced = all.filter((c) => c.before !== undefined && c.after !== undefined && c.before.kind !== c.after.kind).map((c) => c.path + '/')
        changes = all.filter((c) => c.after !== undefined || replaced.some((r) => c.path.startsWith(r)))
      } else {
        changes = [{ path: rel, before: current, after: wanted }]
        // A folder giving way to a file goes file by file, so a guarded apply
        // removes only what it planned to.
        if (current?.kind === 'dir') for await (const c of diffTrees(src, current.cid, undefined, rel)) changes.push(c)
        if (wanted.kind === 'dir') for await (const c of diffTrees(src, undefined, wanted.cid, rel)) changes.push(c)
      }
      if (!force) await this.refuseUncommittedLoss(src, changes)
      const applied = await this.apply(changes, { guard: !force, rules, from, ...progressOf(changes, progress) })
      await this.store.write({ stat: applied.stat })
      return { changes: changes.length, kept: [...applied.ignored, ...applied.skipped], reused: applied.reused }
    })
  }

  /**
   * Throws DirtyWorktreeError when `changes` would delete a folder holding
   * files that HEAD does not have as they are: they exist nowhere else.
   */
  private async refuseUncommittedLoss(src: ObjectSource, changes: readonly PathChange[]): Promise<void> {
    const headTree = await this.headTree()
    for (const c of changes) {
      if (c.before?.kind !== 'dir' || c.after?.kind === 'dir') continue
      const committed = headTree === undefined ? undefined : await lookupPath(this.store, headTree, c.path)
      const uncommitted = (await collect(diffTrees(src, committed?.kind === 'dir' ? committed.cid : undefined, c.before.cid, c.path)))
        .filter((d) => d.after !== undefined && d.after.kind !== 'dir')
      if (uncommitted.length > 0) throw new DirtyWorktreeError(uncommitted.length, uncommitted[0]!.path)
    }
  }

  /** Re-hashes every object reachable from HEAD and the reflog (see maintenance.ts). */
  fsck(progress: Progress = {}): Promise<FsckReport> {
    return fsck(this.store, progress.onObject)
  }

  /** Deletes objects that no commit reaches; serialized with commits, applies and fetches. */
  gc(progress: Progress = {}): Promise<{ removed: number; kept: number }> {
    return this.fetches.withExclusive(() => this.mutex.run(() => gc(this.store, progress.onObject)))
  }

  /**
   * Runs a fetch into `objects`: what it writes is reachable from no ref
   * until the head is integrated, so gc must not run meanwhile. Fetches run
   * together; gc waits for them.
   */
  fetching<T>(fn: () => Promise<T>): Promise<T> {
    return this.fetches.withShared(fn)
  }

  /**
   * Applies a retention policy (history/retention.ts) to every commit the
   * refs reach: each one it does not keep becomes thin, so its content is
   * no longer kept (gc then deletes what no kept commit shares); its
   * metadata stays. HEAD always keeps its content. With `dryRun`, only says.
   */
  forget(policy: RetentionPolicy, dryRun = false): Promise<ForgetResult> {
    checkPolicy(policy)
    return this.mutex.run(async () => {
      const heads = (await this.store.listRefs()).map(([, cid]) => cid)
      const all: Array<Dated & { cid: CID }> = []
      for await (const e of walkLog(this.store, heads)) all.push({ id: e.cid.toString(), cid: e.cid, time: e.commit.time })
      const kept = keptBy(all, policy)
      const head = await this.head()
      if (head !== undefined) kept.set(head.toString(), [...kept.get(head.toString()) ?? [], 'HEAD'])
      // An unfinished checkout's target is about to be HEAD: its content must stay for it to finish.
      const pending = (await this.pendingCheckout())?.target
      if (pending !== undefined) kept.set(pending.toString(), [...kept.get(pending.toString()) ?? [], 'checkout'])
      const thin = await this.store.thinCommits()
      const forgotten = all.filter((c) => !kept.has(c.id) && !thin.has(c.id)).map((c) => c.cid)
      if (!dryRun && forgotten.length > 0) await this.store.write({ thin: forgotten })
      return {
        kept: all.filter((c) => kept.has(c.id)).map((c) => ({ cid: c.cid, time: c.time, reasons: kept.get(c.id)! })),
        forgotten,
        alreadyThin: all.filter((c) => !kept.has(c.id) && thin.has(c.id)).length
      }
    })
  }

  /** True when all the content of a file or symlink entry is in the store, so writing it out needs no peer. */
  async contentHere(entry: DirEntry): Promise<boolean> {
    try {
      await fetchContent([{ path: '', after: entry }], this.store)
      return true
    } catch (err) {
      if (hasCode(err, 'LEFT_CONTENT_ABSENT')) return false
      throw err
    }
  }

  /** The store's content, added up (see maintenance.ts), and its size on disk. */
  async stats(): Promise<ContentStats & { storeBytes: number }> {
    return { ...(await contentStats(this.store)), storeBytes: await diskUsage(this.layout.storeDir) }
  }

  /**
   * Starts writing the files of `remote`, a head being fetched, into the
   * folder as their content lands, ahead of its integrate (see
   * write-ahead.ts). Only while HEAD stays where it is now and `remote`
   * descends from it: otherwise a merge decides what each path becomes,
   * and integrate writes it all. Call `end` when the head is integrated or
   * given up: what is still in transit then is the folder's own.
   */
  async writeAhead(remote: CID, onWrite?: (path: string, size: number) => void): Promise<WriteAhead> {
    const head = await this.head()
    const base = head === undefined ? undefined : (await loadCommit(this.store, head)).tree
    let forward: boolean | undefined
    const owner = {}
    return new WriteAhead(base, () => this.inTransit.release(owner), (changes, stillWanted) => this.mutex.run(async () => {
      if (!stillWanted()) return 0
      // Integrate will refuse until the checkout is finished: nothing goes ahead of it.
      if ((await this.pendingCheckout()) !== undefined) return undefined
      const now = await this.head()
      if (head === undefined ? now !== undefined : !(now?.equals(head) ?? false)) return undefined
      // The head's history is stored before any of its content is ready.
      forward ??= head === undefined || (await this.isAncestor(head, remote))
      if (!forward) return undefined
      const rules = await this.ignoreRules()
      // An ignored file is not written, nor the folder it would make.
      const writable = changes.filter((c) => !rules.ignores(c.path, false))
      const applied = await this.apply(writable, { guard: true, vouched: true, rules, ...(onWrite ? { onWrite } : {}) })
      const stat = new Map<string, StatEntry>()
      for (const [path, entry] of applied.stat) if (entry !== null) stat.set(path, entry)
      // The stat cache says what the files hold (the peer's versions), so integrate finds them written.
      await this.store.write({ stat })
      for (const c of writable) {
        const entry = stat.get(c.path)
        if (entry !== undefined) this.inTransit.set(c.path, { owner, written: c.after!, replaced: c.before, stat: entry })
      }
      return stat.size
    }))
  }

  /**
   * `changes` to the folder, for a HEAD-moving apply (integrate, checkout),
   * given the files in transit among them (write-ahead.ts). A file in
   * transit is never a local edit: its version is a peer's, in the history
   * of a head still being taken in (which merges it in its turn), so it is
   * replaced like the version it was written over; one that already holds
   * the new version is left as it is (`done`, with its stat entry).
   * `touched` are the paths to take out of transit once HEAD has moved.
   */
  private async throughTransit(changes: readonly PathChange[]): Promise<{ changes: PathChange[]; done: Map<string, StatEntry>; touched: string[] }> {
    const out: PathChange[] = []
    const done = new Map<string, StatEntry>()
    const touched: string[] = []
    for (const [i, c] of changes.entries()) {
      // The lstats below are synchronous: let the sockets and timers run now and then.
      if (i % 2048 === 2047) await new Promise(setImmediate)
      const t = this.transitOf(c)
      if (t === undefined) {
        out.push(c)
        continue
      }
      touched.push(c.path)
      // Synchronous: a first sync asks this of tens of thousands of files, and a round trip through the thread pool for each took seconds in all.
      let st: Stats | undefined
      try {
        st = lstatSync(join(this.share, c.path))
      } catch {
        // Gone, or not readable now: the apply looks again, and says why if it must.
        st = undefined
      }
      if (st === undefined || !sameStat(t.stat, st)) out.push(c)
      else if (holdsAfter(t, c)) done.set(c.path, t.stat)
      else out.push({ ...c, before: t.written })
    }
    return { changes: out, done, touched }
  }

  /** The file in transit at the path of `c`, while HEAD still has the version it replaced (see snapshot.ts). */
  private transitOf(c: PathChange): Transit | undefined {
    const t = this.inTransit.size === 0 ? undefined : this.inTransit.get(c.path)
    return t !== undefined && sameEntryOrAbsent(c.before, t.replaced) ? t : undefined
  }

  /**
   * `changes` as the folder holds them, for the free space they need, as
   * throughTransit will see them without looking at stats: a file in
   * transit has replaced what it was written over, and one that holds its
   * new version already needs nothing.
   */
  private async *asWrittenAhead(changes: AsyncIterable<Change>): AsyncGenerator<PathChange> {
    for await (const c of changes) {
      const t = this.transitOf(c)
      if (t === undefined) yield c
      else if (!holdsAfter(t, c)) yield { ...c, before: t.written }
    }
  }

  /**
   * Integrates `remote` (whose closure must already be stored): commits
   * local edits first, so they are merged, never overwritten; then
   * fast-forwards when one history contains the other, or makes the
   * deterministic three-way merge; updates the share folder; moves HEAD.
   * A path edited while the folder was being updated is left alone, and the
   * whole round starts again: the edit is committed and merged with the
   * remote for real (a conflict copy where both changed it), so both
   * versions end up in the folder. Serialized with every other HEAD-moving
   * operation. `hooks` are for tests.
   */
  integrate(remote: CID, onWrite?: (path: string, size: number) => void, hooks?: ApplyHooks, from: ContentFrom = {}): Promise<IntegrateResult> {
    return this.mutex.run(async () => {
      let before: CID | undefined
      let mode: IntegrateResult['mode'] = 'none'
      const conflicts: Conflict[] = []
      const editsKept = new Set<string>()
      let written = 0
      let reused = 0
      const deleted: string[] = []
      for (let round = 1; ; round++) {
        await this.commitLocked('local changes', { changedOnly: true })
        const head = await this.head()
        if (round === 1) before = head
        const made: Block[] = []
        const merged = head === undefined
          ? { kind: 'fast-forward' as const, head: remote }
          : await mergeHeads(this.store, { put: (b) => void made.push(b) }, head, remote)
        if (merged.kind === 'up-to-date') return { before, after: head, mode, conflicts, editsKept: [...editsKept], written, reused, skipped: [], deleted }
        const target = merged.head
        if (merged.kind === 'merged') {
          mode = 'merge'
          conflicts.push(...merged.conflicts)
          for (const p of merged.editsKept) editsKept.add(p)
        } else if (mode === 'none') mode = 'fast-forward'
        const src = overlaySource(this.store, new Map(made.map((b) => [b.cid.toString(), b.bytes])))
        const fromTree = head === undefined ? undefined : (await loadCommit(this.store, head)).tree
        const toTree = (await loadCommit(src, target)).tree
        // Store the merge first: the folder may only show what the store can reproduce.
        if (made.length > 0) await this.store.putBlocks(made.slice(0, -1))
        // The diff is walked, never held: for the free space and the
        // content, so that both are sure before anything in the folder
        // changes, then to apply it a window at a time (see applyWindows);
        // a bucket of a huge directory at a time, as nothing here shows its order.
        const diff = (): AsyncGenerator<Change> => diffTrees(src, fromTree, toTree, '', true)
        await checkSpace(this.asWrittenAhead(diff()), this.layout.tmpDir)
        await fetchContent(diff(), this.store, { ...from })
        const rules = await this.ignoreRules()
        const skipped: string[] = []
        const touched: string[] = []
        // A window's stat entries are written when the next window starts,
        // the last window's with HEAD. Those written before HEAD moves say
        // what the files now hold, as a write-ahead's do: if the apply stops
        // there, the next commit takes them as local changes, which merge
        // with the remote as the same change on both sides.
        let stat = new Map<string, StatEntry | null>()
        for await (const window of applyWindows(diff())) {
          if (stat.size > 0) await this.store.write({ stat })
          const through = await this.throughTransit(window)
          const applied = await this.apply(through.changes, { guard: true, rules, spaceChecked: true, ...(onWrite ? { onWrite } : {}), ...(hooks ? { hooks } : {}) })
          stat = applied.stat
          for (const [p, e] of through.done) stat.set(p, e)
          for (const p of through.touched) touched.push(p)
          for (const p of applied.deleted) deleted.push(p)
          // Edited as they were written: the next commit must look at them,
          // whether or not the watcher has said so yet.
          for (const p of applied.skipped) {
            skipped.push(p)
            this.changes?.add(p)
          }
          for (const e of stat.values()) if (e !== null) written++
          reused += applied.reused
        }
        if (skipped.length > 0 && round < INTEGRATE_ROUNDS) {
          // HEAD stays: the next round commits the folder as it is now (what
          // was written, and the edits) and merges that with `remote`.
          await this.store.write({ stat })
          continue
        }
        const last = made[made.length - 1]
        await this.moveHead(target, { ...(last ? { blocks: [last], commits: [target] } : {}), stat })
        for (const p of touched) this.inTransit.delete(p)
        return { before, after: target, mode, conflicts, editsKept: [...editsKept], written, reused, skipped, deleted }
      }
    })
  }

  /**
   * Applies changes to the share folder (see worktree/materialize.ts), once
   * the content of everything they write is here: an old version may have
   * been fetched as history only, or forgotten, so what is missing is
   * fetched from `how.from` first, before anything in the folder changes.
   * Without `how.from` the caller has made sure of that already.
   */
  private async apply(changes: readonly PathChange[], how: ApplyHow): Promise<ApplyResult> {
    const { onWrite, hooks } = how
    if (how.from !== undefined) await fetchContent(changes, this.store, { ...how.from })
    // Nothing goes into another folder made at the share's path, even one
    // made while the content was fetched.
    await checkShareIdentity(this.share, this.shareWas)
    return applyChanges(changes, {
      share: this.share, tmp: this.layout.tmpDir, src: this.store, guard: how.guard, ignore: how.rules, vouched: how.vouched ?? false, syncAtEnd: how.syncAtEnd ?? false,
      ...(how.beforeWrite ? { beforeWrite: how.beforeWrite } : {}),
      ...(how.spaceChecked ? { spaceChecked: true } : {}),
      statOf: (path) => this.store.statEntry(path),
      ...(hooks ? { hooks } : {}),
      ...(onWrite ? { onWrite: (p: string, e: { size: number }) => onWrite(p, e.size) } : {})
    })
  }

  /**
   * True when `cid` is HEAD or in its history: O(1) once HEAD's history is
   * indexed (see HistoryIndex), so a peer repeating an old head costs little.
   */
  async inHistory(cid: CID): Promise<boolean> {
    const head = await this.head()
    return head !== undefined && (await this.history.contains(head, cid))
  }

  /** True when `ancestor` is `descendant` or one of its ancestors; both must be stored. */
  isAncestor(ancestor: CID, descendant: CID): Promise<boolean> {
    return isAncestor(this.store, ancestor, descendant)
  }

  /**
   * The conflict copies HEAD holds (files whose names conflictName made),
   * each with the entry of the file it is a copy of, when HEAD has one.
   * Reads the whole tree of HEAD.
   */
  async conflicts(): Promise<ConflictCopy[]> {
    const tree = await this.headTree()
    if (tree === undefined) return []
    const found: ConflictCopy[] = []
    for await (const c of diffTrees(this.store, undefined, tree, '')) {
      if (c.after === undefined || c.after.kind === 'dir') continue
      const copy = await this.conflictCopy(tree, c.path, c.after)
      if (copy !== undefined) found.push(copy)
    }
    return found
  }

  private async conflictCopy(tree: CID, path: string, entry: DirEntry): Promise<ConflictCopy | undefined> {
    const slash = path.lastIndexOf('/')
    const copyName = path.slice(slash + 1)
    const name = parseConflictName(copyName)
    if (name === undefined) return undefined
    let original = path.slice(0, slash + 1) + name.original
    let originalEntry = await lookupPath(this.store, tree, original)
    // A name at the length limit may have been cut to fit (by up to 3 bytes, on a character boundary):
    // then the original is the one longer name beside it whose copy it names.
    if (originalEntry === undefined && Buffer.byteLength(copyName) >= MAX_NAME_BYTES - 3) {
      const parent = slash < 0 ? tree : (await lookupPath(this.store, tree, path.slice(0, slash)))?.cid
      const longer = parent === undefined ? []
        : (await readDir(this.store, parent)).filter((e) => e.name !== copyName && conflictName(e.name, name.label, name.time, name.attempt) === copyName)
      // Two such names: the copy cannot say which it belongs to, and is left out rather than guessed.
      if (longer.length > 1) return undefined
      if (longer.length === 1) {
        original = path.slice(0, slash + 1) + longer[0]!.name
        originalEntry = longer[0]
      }
    }
    return { path: original, copy: path, label: name.label, time: name.time, copyEntry: entry, original: originalEntry?.kind === 'dir' ? undefined : originalEntry }
  }

  /**
   * Ends a conflict by keeping one version: `original` deletes the copy,
   * `copy` writes the copy's content over the original and deletes the copy.
   * Content comes from HEAD. Either version edited since HEAD fails it with
   * DirtyWorktreeError before anything changes, so nothing uncommitted is
   * lost. HEAD does not move: the result is an ordinary change for the next
   * commit. Resolves with the original's path.
   */
  resolveConflict(copyPath: string, keep: 'copy' | 'original'): Promise<string> {
    return this.mutex.run(async () => {
      const rel = normalizeRel(copyPath)
      const tree = await this.headTree()
      const entry = tree === undefined ? undefined : await lookupPath(this.store, tree, rel)
      const found = tree === undefined || entry === undefined || entry.kind === 'dir' ? undefined : await this.conflictCopy(tree, rel, entry)
      if (found === undefined) throw new PathNotFoundError(copyPath, 'HEAD as a conflict copy')
      // Both versions must be as HEAD has them: an edit since would be lost, or kept beside half a resolution.
      const rules = await this.ignoreRules()
      const snap = await this.scan(false, {}, rules)
      const src = overlaySource(this.store, snap.dirs)
      const now = async (path: string, committed: DirEntry | undefined): Promise<DirEntry | undefined> => {
        const entry = await lookupPath(src, snap.root, path)
        const same = entry === undefined ? committed === undefined : committed !== undefined && entry.kind === committed.kind && entry.cid.equals(committed.cid)
        if (!same) throw new DirtyWorktreeError(1, path)
        return entry
      }
      const copyNow = await now(rel, found.copyEntry)
      const originalNow = await now(found.path, found.original)
      const originalName = found.path.slice(found.path.lastIndexOf('/') + 1)
      // `before` is the folder as just scanned (a touched mtime included), so the guard stops only a later edit.
      // The copy goes only once its content is in place: an edit landing in between keeps both.
      const steps: PathChange[] = keep === 'copy' ? [{ path: found.path, before: originalNow, after: { ...found.copyEntry, name: originalName } }] : []
      steps.push({ path: rel, before: copyNow, after: undefined })
      for (const step of steps) {
        const applied = await this.apply([step], { guard: true, rules })
        await this.store.write({ stat: applied.stat })
        const kept = [...applied.ignored, ...applied.skipped]
        if (kept.length > 0) throw new DirtyWorktreeError(kept.length, kept[0])
      }
      return found.path
    })
  }

  /**
   * The entries of the folder at share-relative `path` in commit `rev`,
   * sorted by name; none before the first commit. PathNotFoundError when
   * `path` is not a folder there.
   */
  async list(path: string, rev = 'HEAD'): Promise<DirEntry[]> {
    const rel = normalizeRel(path)
    if (rev === 'HEAD' && (await this.head()) === undefined && rel === '') return []
    const tree = (await loadCommit(this.store, await this.resolve(rev))).tree
    const dir = await lookupPath(this.store, tree, rel)
    if (dir?.kind !== 'dir') throw new PathNotFoundError(rel === '' ? '.' : rel, rev)
    return readDir(this.store, dir.cid)
  }

  /** The tree of HEAD, or undefined before the first commit. */
  async headTree(): Promise<CID | undefined> {
    const head = await this.head()
    return head === undefined ? undefined : (await loadCommit(this.store, head)).tree
  }
}

/** A conflict copy in HEAD, and the file it is a copy of. */
export interface ConflictCopy {
  /** The original's share-relative path. */
  readonly path: string
  /** The copy's share-relative path. */
  readonly copy: string
  /** The peer that made the copy's version, as its name says. */
  readonly label: string
  /** The copy's version's mtime, to the second, from its name (ms since the epoch). */
  readonly time: number
  readonly copyEntry: DirEntry
  /** The original in HEAD; undefined when it is gone (or a folder). */
  readonly original: DirEntry | undefined
}

/**
 * Where content that is not here comes from, when writing out an old
 * version: a running node's peers, or one named with --from.
 */
export interface ContentFrom {
  readonly source?: BlockSource | undefined
  /** Ends the error's message when the source lacks it too. */
  readonly absentWhy?: string
  /** Called as content arrives from the source (see FetchProgress). */
  readonly onProgress?: (p: FetchProgress) => void
}

/** What `Repo.forget` did. */
export interface ForgetResult {
  /** The commits whose content stays, newest first, with the rules that keep each. */
  readonly kept: ReadonlyArray<{ readonly cid: CID; readonly time: number; readonly reasons: readonly string[] }>
  /** The commits made thin now. */
  readonly forgotten: readonly CID[]
  /** Commits not kept that were thin already. */
  readonly alreadyThin: number
}

/**
 * Bytes of the files under `dir`, all the way down. LevelDB deletes table
 * files as it compacts, so a file listed a moment ago may be gone: it counts 0.
 */
async function diskUsage(dir: string): Promise<number> {
  let total = 0
  const pending = [dir]
  const gone = (err: unknown): undefined => {
    if ((err as { code?: string }).code === 'ENOENT') return undefined
    throw err
  }
  while (pending.length > 0) {
    const d = pending.pop()!
    for (const e of (await readdir(d, { withFileTypes: true }).catch(gone)) ?? []) {
      const p = join(d, e.name)
      if (e.isDirectory()) pending.push(p)
      else if (e.isFile()) total += (await stat(p).catch(gone))?.size ?? 0
    }
  }
  return total
}

/** True when the file written ahead is already the version `c` writes. */
function holdsAfter(t: Transit, c: PathChange): boolean {
  return c.after?.kind === 'file' && c.after.cid.equals(t.written.cid)
}

/**
 * True when `now`, what the folder holds at a path a checkout cut short was
 * changing from `head` to `target`, is what that run could have left there:
 * HEAD's version (not reached yet), nothing (removed, or a folder that gave
 * way; or deleted since, which the target's version replaces), a folder
 * where either has one, or a file a power cut tore after its rename: with
 * the target's mtime, or empty.
 */
function leftByCheckout(now: DirEntry | undefined, head: DirEntry | undefined, target: DirEntry | undefined): boolean {
  if (now === undefined || sameEntryOrAbsent(now, head)) return true
  if (now.kind === 'dir') return head?.kind === 'dir' || target?.kind === 'dir'
  return now.kind === 'file' && target?.kind === 'file' && (now.mtime === target.mtime || now.size === 0)
}

/** How `Repo.apply` writes: guarded or not, under which ignore rules, telling whom. */
interface ApplyHow {
  readonly guard: boolean
  /** See ApplyOptions `vouched`. */
  readonly vouched?: boolean
  readonly rules: IgnoreRules
  /** Where missing content of what is written comes from; left out when the caller fetched it already. */
  readonly from?: ContentFrom
  readonly onWrite?: (path: string, size: number) => void
  readonly hooks?: ApplyHooks
  /** See ApplyOptions `syncAtEnd` and `beforeWrite`. */
  readonly syncAtEnd?: boolean
  readonly beforeWrite?: () => Promise<void>
  /** See ApplyOptions `spaceChecked`. */
  readonly spaceChecked?: boolean
}

/** Every commit id (a dag-cbor, sha2-256 CIDv1 in base32) starts with this; short ids leave it out. */
export const COMMIT_ID_PREFIX = 'bafyrei'

/** Short ids are at least this long, as git's default abbreviation of 7 is too short for folders with long histories. */
export const SHORT_ID_LENGTH = 8

/**
 * The shortest abbreviation `resolve` looks up: three base32 characters are
 * one commit in 32,768, too few to have been meant as an id, and a word of
 * `log` or `diff` that is not one is read as a path instead.
 */
export const MIN_ID_PREFIX = 4

/** Ref names of the reflog start with this. */
const REFLOG = 'reflog/'

/**
 * The ref a checkout sets to its target before it writes a file, and
 * clears as HEAD moves: while it is set, the folder may hold that
 * checkout's files half-written (after a power cut), which no commit may
 * record. A forced checkout sets CHECKOUT_FORCED instead, which only a
 * forced checkout finishes.
 */
const CHECKOUT = 'CHECKOUT'
const CHECKOUT_FORCED = 'CHECKOUT-FORCED'

/** A share-relative posix path from user input (`./a/b/`, `a\\b` stays a name). */
export function normalizeRel(path: string): string {
  return path.split('/').filter((p) => p !== '' && p !== '.').join('/')
}

/** Tells `progress` what an apply of `changes` will write, and hands on its onWrite. */
function progressOf(changes: readonly PathChange[], progress: Progress): Pick<ApplyHow, 'onWrite'> {
  if (progress.onPlan !== undefined) {
    const files = changes.filter((c) => c.after?.kind === 'file')
    progress.onPlan(files.length, files.reduce((sum, c) => sum + c.after!.size, 0))
  }
  return progress.onWrite === undefined ? {} : { onWrite: progress.onWrite }
}

/**
 * An automatic commit message that names what changed, as people would:
 * `add a.jpg`, `update notes.txt, a.jpg and 3 more`, `delete old.log`.
 * Files and links are named; folders only when nothing else changed.
 */
export function describeChanges(changes: Iterable<Change>): string {
  const tally = new ChangeTally()
  for (const c of changes) tally.add(c)
  return tally.message()
}

/** Some changes: how many, the first three paths, and their kinds. */
interface Named { count: number; readonly first: string[]; readonly kinds: Set<Change['kind']> }

/**
 * A commit's summary and automatic message (`describeChanges`), gathered
 * one change at a time: a commit of a million files keeps no list of them.
 */
export class ChangeTally {
  /** Every change, folders included. */
  private readonly all: Named = { count: 0, first: [], kinds: new Set() }
  /** Changes of files and links. */
  private readonly entries: Named = { count: 0, first: [], kinds: new Set() }
  private readonly counts = { added: 0, modified: 0, deleted: 0 }

  add(c: Change): void {
    note(this.all, c)
    if ((c.after ?? c.before)!.kind !== 'dir') note(this.entries, c)
    countChange(this.counts, c)
  }

  /** How many changes were added, folders included. */
  get changes(): number {
    return this.all.count
  }

  get summary(): DiffSummary {
    return { ...this.counts }
  }

  message(): string {
    const named = this.entries.count > 0 ? this.entries : this.all
    if (named.count === 0) return 'update folders'
    const kinds = named.kinds
    const verb = kinds.size > 1 ? 'update' : kinds.has('added') ? 'add' : kinds.has('deleted') ? 'delete' : 'update'
    const names = named.first.slice(0, named.count === 3 ? 3 : 2)
    const rest = named.count - names.length
    const list = rest > 0 ? `${names.join(', ')} and ${rest} more` : names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : names[0]!
    return `${verb} ${list}`
  }
}

function note(named: Named, c: Change): void {
  named.count++
  if (named.first.length < 3) named.first.push(c.path)
  named.kinds.add(c.kind)
}

/** Drains an async iterable into an array. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}
