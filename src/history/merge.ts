/**
 * The three-way merge of snapshots, and the merge commit that records it.
 * Both are symmetric: swapping ours and theirs (with their labels) gives the
 * byte-identical tree and commit, which is how two peers that merge the same
 * pair of heads independently converge on the same commit CID. So no rule
 * here may prefer a side for being "ours"; every tie is broken by content.
 */
import type { CID } from 'multiformats/cid'
import { LeftError } from '../errors.js'
import { type Block, childPath, compareBytes, compareNames, encodeNode } from '../object/index.js'
import { sameEntryOrAbsent } from '../tree/diff.js'
import type { DirEntry } from '../object/index.js'
import { dirDelta, editDir, findEntry } from '../tree/directory.js'
import type { ObjectSink, ObjectSource } from '../tree/source.js'
import { type LoggedCommit, generationAfter } from './ancestry.js'
import { conflictName } from './conflict-name.js'

export { conflictName } from './conflict-name.js'

/** Who made each side's head commit: the peer ids that label conflict copies. */
export interface MergeContext {
  readonly oursLabel: string
  readonly theirsLabel: string
}

/** A path both sides changed differently: one version kept it, the other was renamed. */
export interface Conflict {
  /** Share-relative path the two versions competed for. */
  readonly path: string
  /** Where the winning version is now (the contested path itself). */
  readonly keptPath: string
  /** Where the losing version was put, beside it. */
  readonly copyPath: string
}

/** The outcome of mergeTrees. */
export interface TreeMerge {
  /** Root directory of the merged snapshot. */
  readonly tree: CID
  /** Conflict copies made, sorted by path. */
  readonly conflicts: readonly Conflict[]
  /** Paths deleted on one side and modified on the other, where the modification was kept; sorted. */
  readonly editsKept: readonly string[]
}

/**
 * Merges the snapshots `ours` and `theirs` against their common `base`
 * (undefined: no common history, treated as an empty tree). Per name:
 *
 * - same kind, cid and exec on both sides → that entry, with the later mtime;
 * - both directories → merged recursively (against the base entry if it was a
 *   directory);
 * - changed on one side only → that side, deletions included; a change of
 *   mtime alone yields to a content change on the other side;
 * - modified on one side, deleted on the other → the modification; for a
 *   directory, the paths inside it that were modified survive and the rest
 *   go;
 * - a directory against a file or link → the directory keeps the name (merged
 *   with the base if it was a directory) and the other becomes a conflict
 *   copy, unless the directory side only deleted things, in which case the
 *   file or link takes the name;
 * - anything else changed differently on both sides → the later mtime keeps
 *   the name (ties: larger CID bytes, then larger label), the other becomes a
 *   conflict copy named by conflictName, with `-2`, `-3`… when taken.
 *
 * New directory nodes go to `sink`; subtrees equal on both sides (or
 * unchanged on one) are reused by CID without being loaded.
 * Throws MissingObjectError when a directory it must open is not in `src`.
 */
export async function mergeTrees(src: ObjectSource, sink: ObjectSink, base: CID | undefined, ours: CID, theirs: CID, ctx: MergeContext): Promise<TreeMerge> {
  const merger = new Merger(src, sink, ctx)
  const tree = (await merger.dir(base, ours, theirs, '')) ?? (await merger.emptyDir())
  const conflicts = merger.conflicts.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return { tree, conflicts, editsKept: merger.editsKept.sort() }
}

/**
 * The deterministic merge commit of heads `a` and `b` over `tree`: parents
 * sorted by CID bytes, the larger author (string order), the later parent
 * time, message `merge`. Argument order does not matter. Throws a LeftError
 * with code `LEFT_INVALID_MERGE` when `a` and `b` are the same commit.
 */
export function mergeCommit(tree: CID, a: LoggedCommit, b: LoggedCommit): Block {
  if (a.cid.equals(b.cid)) {
    throw new LeftError('LEFT_INVALID_MERGE', `cannot merge a commit with itself: ${a.cid.toString()}`, { data: { cid: a.cid.toString() } })
  }
  const parents = [a.cid, b.cid].sort((x, y) => compareBytes(x.bytes, y.bytes))
  return encodeNode({
    type: 'commit',
    tree,
    parents,
    generation: generationAfter([a.commit, b.commit]),
    author: a.commit.author > b.commit.author ? a.commit.author : b.commit.author,
    time: Math.max(a.commit.time, b.commit.time),
    message: 'merge'
  })
}

const EMPTY_DIR = encodeNode({ type: 'dir', entries: [] })

/** What one name becomes: the entry that keeps it, and maybe a conflict copy. */
interface Outcome {
  readonly keep?: DirEntry
  readonly copy?: { readonly entry: DirEntry; readonly label: string }
}

class Merger {
  readonly conflicts: Conflict[] = []
  readonly editsKept: string[] = []

  constructor(private readonly src: ObjectSource, private readonly sink: ObjectSink, private readonly ctx: MergeContext) {}

  /** Stores and returns the empty directory. */
  async emptyDir(): Promise<CID> {
    await this.sink.put(EMPTY_DIR)
    return EMPTY_DIR.cid
  }

  /** Merges three directories (undefined: absent, i.e. empty); undefined when the result is empty. */
  async dir(b: CID | undefined, o: CID | undefined, t: CID | undefined, path: string): Promise<CID | undefined> {
    if (sameCid(o, t)) return nonEmpty(o)
    if (sameCid(b, o)) return nonEmpty(t)
    if (sameCid(b, t)) return nonEmpty(o)
    // In a sharded directory, the buckets where ours and theirs agree are
    // settled already: only the names in the others need a decision.
    // Read once: the edit below opens the same nodes of ours again.
    const src = remembering(this.src)
    const [be, oe, te] = (await dirDelta(src, [b, o, t], [1, 2])).map(byName) as [Map<string, DirEntry>, Map<string, DirEntry>, Map<string, DirEntry>]
    const names = [...new Set([...be.keys(), ...oe.keys(), ...te.keys()])].sort(compareNames)
    /** The merged directory as changes to ours: name → entry, or undefined for gone. */
    const edits = new Map<string, DirEntry | undefined>()
    const copies: Array<{ name: string; copy: NonNullable<Outcome['copy']> }> = []
    for (const name of names) {
      const out = await this.entry(be.get(name), oe.get(name), te.get(name), childPath(path, name))
      edits.set(name, out.keep)
      if (out.copy !== undefined) copies.push({ name, copy: out.copy })
    }
    // Copies are named after every kept name is known, in name order, so
    // the `-2` suffixes come out the same on every peer. A name outside the
    // decided ones is taken when ours (equal to theirs there) has it.
    const taken = async (name: string): Promise<boolean> =>
      edits.has(name) ? edits.get(name) !== undefined : o !== undefined && (await findEntry(src, o, name)) !== undefined
    for (const { name, copy } of copies) {
      let copyName = conflictName(name, copy.label, copy.entry.mtime)
      for (let n = 2; await taken(copyName); n++) copyName = conflictName(name, copy.label, copy.entry.mtime, n)
      edits.set(copyName, { ...copy.entry, name: copyName })
      this.conflicts.push({ path: childPath(path, name), keptPath: childPath(path, name), copyPath: childPath(path, copyName) })
    }
    const merged = await editDir(src, this.sink, o, edits)
    return merged.count === 0 ? undefined : merged.cid
  }

  /** Applies the rules of mergeTrees to one name. */
  private async entry(b: DirEntry | undefined, o: DirEntry | undefined, t: DirEntry | undefined, path: string): Promise<Outcome> {
    if (o === undefined && t === undefined) return {}
    if (o !== undefined && t !== undefined && sameContent(o, t)) return { keep: o.mtime >= t.mtime ? o : t }
    const bDir = b?.kind === 'dir' ? b.cid : undefined
    if (o?.kind === 'dir' && t?.kind === 'dir') return { keep: await this.dirEntry(o.name, await this.dir(bDir, o.cid, t.cid, path)) }
    if (sameEntryOrAbsent(b, o)) return keep(t)
    if (sameEntryOrAbsent(b, t)) return keep(o)
    // A touch (mtime only) carries no content to lose against a real edit.
    if (t !== undefined && sameContentOrAbsent(b, o)) return keep(t)
    if (o !== undefined && sameContentOrAbsent(b, t)) return keep(o)
    const oDir = o?.kind === 'dir' ? o.cid : undefined
    const tDir = t?.kind === 'dir' ? t.cid : undefined
    if (o === undefined || t === undefined) {
      // Modified against deleted: keep the modification.
      const present = (o ?? t)!
      if (present.kind !== 'dir') {
        this.editsKept.push(path)
        return { keep: present }
      }
      // The deleting side counts as an empty directory, so only what the
      // other side changed inside survives (and is reported path by path).
      const merged = await this.dir(bDir, oDir, tDir, path)
      if (merged === undefined && bDir !== undefined) return {}
      return { keep: await this.dirEntry(present.name, merged) }
    }
    if (oDir !== undefined || tDir !== undefined) {
      const other = oDir !== undefined ? t : o
      const otherLabel = oDir !== undefined ? this.ctx.theirsLabel : this.ctx.oursLabel
      const merged = await this.dir(bDir, oDir, tDir, path)
      // The directory side only deleted things, which the other side's
      // replacement deleted too: nothing is lost by letting it win.
      if (merged === undefined && bDir !== undefined) return { keep: other }
      return { keep: await this.dirEntry(other.name, merged), copy: { entry: other, label: otherLabel } }
    }
    const oursWins = compareVersions(o, this.ctx.oursLabel, t, this.ctx.theirsLabel) > 0
    return oursWins
      ? { keep: o, copy: { entry: t, label: this.ctx.theirsLabel } }
      : { keep: t, copy: { entry: o, label: this.ctx.oursLabel } }
  }

  private async dirEntry(name: string, cid: CID | undefined): Promise<DirEntry> {
    return { name, kind: 'dir', cid: cid ?? (await this.emptyDir()), size: 0, mtime: 0, exec: false }
  }
}

/** A source that reads each object from `src` at most once. */
function remembering(src: ObjectSource): ObjectSource {
  const seen = new Map<string, Promise<Uint8Array | undefined>>()
  return {
    get(cid) {
      const key = cid.toString()
      let p = seen.get(key)
      if (p === undefined) seen.set(key, (p = src.get(cid)))
      return p
    }
  }
}

function byName(entries: readonly DirEntry[]): Map<string, DirEntry> {
  return new Map(entries.map((e) => [e.name, e]))
}

function keep(entry: DirEntry | undefined): Outcome {
  return entry === undefined ? {} : { keep: entry }
}

/**
 * Orders two competing versions: positive when `x` should keep the name.
 * Later mtime, then larger CID bytes, then larger label; kind and exec
 * last, so the order is total and never depends on which side is ours.
 */
function compareVersions(x: DirEntry, xLabel: string, y: DirEntry, yLabel: string): number {
  if (x.mtime !== y.mtime) return x.mtime - y.mtime
  const byCid = compareBytes(x.cid.bytes, y.cid.bytes)
  if (byCid !== 0) return byCid
  if (xLabel !== yLabel) return xLabel > yLabel ? 1 : -1
  if (x.kind !== y.kind) return x.kind > y.kind ? 1 : -1
  return Number(x.exec) - Number(y.exec)
}

function sameCid(a: CID | undefined, b: CID | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.equals(b)
}

/** The empty directory counts as absent, so callers can drop or recreate it alike. */
function nonEmpty(cid: CID | undefined): CID | undefined {
  return cid === undefined || cid.equals(EMPTY_DIR.cid) ? undefined : cid
}

/** Same kind, content and exec bit; mtime may differ. */
function sameContent(a: DirEntry, b: DirEntry): boolean {
  return a.kind === b.kind && a.cid.equals(b.cid) && a.exec === b.exec
}

function sameContentOrAbsent(a: DirEntry | undefined, b: DirEntry | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && sameContent(a, b)
}
