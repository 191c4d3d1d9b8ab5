/**
 * The commands that read history: log, versions and reflog. They print short ids, as
 * git does (`--full-id` and `--json` give whole CIDs), and take paths
 * relative to where the user stands, after `--` or where no revision of
 * that name exists.
 */
import type { Command } from 'commander'
import type { CID } from 'multiformats/cid'
import { type Change, type LogEntry, PathNotFoundError, type Repo, UnknownRevisionError, UsageError, hasCode, summarize } from '../../src/index.js'
import { type Runtime, workDir } from '../context.js'
import { drawGraph } from '../graph.js'
import { changeLine, formatBytes, formatDate, printable, quotePath, summaryText } from '../output.js'

function count(value: string, name: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive whole number, not ${JSON.stringify(value)}`)
  return n
}

/** How a command names commits: short ids for people, whole CIDs on request. */
export function idNamer(repo: Repo, full: boolean): (cid: CID) => Promise<string> {
  return async (cid) => (full ? cid.toString() : repo.shortId(cid))
}

/**
 * Splits a command's words into revisions and share-relative paths, as git
 * does: the words after `--` are paths; before it, words are revisions
 * while they resolve (at most `maxRevs`), and the rest must be paths.
 */
export async function revisionsAndPaths(repo: Repo, cmd: Command, rt: Runtime, words: readonly string[], maxRevs: number): Promise<{ revs: string[]; paths: string[] }> {
  const afterDash = wordsAfterDoubleDash(cmd, rt.argv)
  const before = words.slice(0, words.length - afterDash)
  const revs: string[] = []
  let i = 0
  for (; i < before.length && revs.length < maxRevs; i++) {
    try {
      await repo.resolve(before[i]!)
      revs.push(before[i]!)
    } catch (err) {
      if (!hasCode(err, 'LEFT_UNKNOWN_REVISION')) throw err
      break
    }
  }
  const cwd = workDir(cmd, rt)
  const paths = words.slice(i).map((w) => repo.sharePath(cwd, w))
  // Before `--`, a word that is not a revision must name something in the
  // share folder, so a mistyped id is an error, not an empty answer.
  for (let j = i; j < before.length; j++) {
    if (!(await repo.inShare(paths[j - i]!))) throw new UnknownRevisionError(before[j]!, 'or-path')
  }
  return { revs, paths }
}

/** How many of the command's words came after a `--` (commander drops the `--` itself). */
function wordsAfterDoubleDash(cmd: Command, argv: readonly string[]): number {
  const at = argv.indexOf('--', argv.indexOf(cmd.name()) + 1)
  return at === -1 ? 0 : argv.length - at - 1
}


/** ` path | 1.2 KiB -> 1.4 KiB`, the lines of --stat, and a total. */
function statLines(changes: readonly Change[]): string[] {
  const files = changes.filter((c) => (c.after ?? c.before)!.kind !== 'dir')
  const out = files.map((c) => {
    const size = (n: number | undefined): string => (n === undefined ? '-' : formatBytes(n))
    return ` ${quotePath(c.path)} | ${size(c.before?.size)} -> ${size(c.after?.size)}`
  })
  out.push(` ${files.length} file${files.length === 1 ? '' : 's'} changed`)
  return out
}

interface LogFlags {
  maxCount?: string
  json?: boolean
  oneline?: boolean
  stat?: boolean
  nameStatus?: boolean
  all?: boolean
  graph?: boolean
  fullId?: boolean
}

/** Registers log, versions and reflog on `program`. */
export function registerHistoryCommands(program: Command, rt: Runtime): void {
  const { io } = rt
  program.command('log')
    .description('list commits, newest first; with paths, only those that changed them')
    .argument('[revision-and-paths...]', 'start from this commit instead of HEAD (id, short id, HEAD~N, HEAD@{N}); then paths, or paths after --')
    .option('-n, --max-count <n>', 'show at most n commits')
    .option('--oneline', 'one line per commit: short id and message')
    .option('--stat', 'list the files each commit changed, with their sizes before and after')
    .option('--name-status', 'list the files each commit changed, with A, M or D')
    .option('--graph', 'draw the history as a graph: merges show where their lines meet')
    .option('--all', 'every commit any ref or the reflog reaches, not only HEAD\'s history')
    .option('--full-id', 'print whole commit ids')
    .option('--json', 'print an array of commits as JSON')
    .action(async (words: string[], opts: LogFlags, cmd: Command) => {
      const limit = opts.maxCount === undefined ? undefined : count(opts.maxCount, '-n')
      await rt.withRepo(cmd, async (repo) => {
        const { revs, paths } = await revisionsAndPaths(repo, cmd, rt, words, opts.all ? 0 : 1)
        const entries = await repo.log({ ...(revs[0] !== undefined ? { from: revs[0] } : {}), all: opts.all ?? false, ...(limit !== undefined ? { limit } : {}), ...(paths.length > 0 ? { paths } : {}) })
        if (opts.json) return io.json(await Promise.all(entries.map((e) => entryJson(repo, e, opts.stat === true || opts.nameStatus === true))))
        if (entries.length === 0) io.warn(paths.length > 0 ? 'no commits changed those paths' : 'no commits yet')
        const name = idNamer(repo, opts.fullId ?? false)
        // With --graph, every line gets the graph's prefix; without it, none.
        // With paths, a parent left out of the list ends its line, as a
        // first commit does; with -n, lines run on past the last commit.
        const shown = new Set(entries.map((e) => e.cid.toString()))
        const graph = opts.graph
          ? drawGraph(entries.map((e) => ({ id: e.cid.toString(), parents: e.commit.parents.map(String).filter((p) => paths.length === 0 || shown.has(p)) })))
          : undefined
        for (const [index, e] of entries.entries()) {
          const rows = graph?.[index]
          const say = (text: string): void => io.say(rows === undefined ? text : `${rows.continuation.padEnd(rows.commit.length)} ${text}`.trimEnd())
          for (const r of rows?.before ?? []) io.say(r)
          const head = (text: string): void => io.say(rows === undefined ? text : `${rows.commit} ${text}`)
          const firstLine = e.commit.message.split('\n')[0] ?? ''
          const merge = e.commit.parents.length > 1
          if (opts.oneline) head(`${await name(e.cid)} ${printable(firstLine)}`)
          else head(`commit ${await name(e.cid)}${merge ? ' (merge)' : ''}`)
          for (const r of rows?.after ?? []) io.say(r)
          if (!opts.oneline) {
            if (merge) say(`Merge:  ${(await Promise.all(e.commit.parents.map(name))).join(' ')}`)
            say(`Author: ${printable(e.commit.author)}`)
            say(`Date:   ${formatDate(e.commit.time)}`)
            if (merge) {
              for (let i = 0; i < e.commit.parents.length; i++) say(`Change: against ${await name(e.commit.parents[i]!)}: ${summaryText(summarize(e.changes[i]!))}`)
            } else say(`Change: ${summaryText(summarize(e.changes[0]!))}`)
            say('')
            // Commit messages come from peers too: no raw control characters.
            for (const line of e.commit.message.split('\n')) say(`    ${printable(line)}`)
            say('')
          }
          // A merge's files are listed against its first parent, as git's -m --first-parent would.
          if (opts.nameStatus) for (const c of e.changes[0]!) say(changeLine(c))
          if (opts.stat) for (const line of statLines(e.changes[0]!)) say(line)
          if ((opts.nameStatus || opts.stat) && opts.oneline) say('')
        }
      })
    })

  program.command('versions')
    .description('every version of one file in history, newest first, with the command that brings each back')
    .argument('<path>', 'the file: relative to where you are, or to the share folder')
    .option('--full-id', 'print whole commit ids')
    .option('--json', 'print an array of versions as JSON')
    .action(async (arg: string, opts: { fullId?: boolean; json?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const path = repo.sharePath(workDir(cmd, rt), arg)
        if (path === '') throw new UsageError('versions needs a file, not the whole share folder')
        const name = idNamer(repo, opts.fullId ?? false)
        const rows = []
        for (const e of await repo.log({ paths: [path] })) {
          const change = e.changes[0]!.find((c) => c.path === path)
          // A commit that changed only what lies below `path` (it is a folder) is not a version of a file.
          if (change === undefined) continue
          const id = await name(e.cid)
          const kind = change.after?.kind
          // Whether restoring it needs a peer: its content may never have been fetched, or forgotten.
          const here = change.after === undefined || change.after.kind === 'dir' ? null : await repo.contentHere(change.after)
          rows.push({ cid: e.cid, id, time: e.commit.time, author: e.commit.author, size: change.after?.size ?? null, kind: kind ?? null, here, restore: kind === undefined ? null : `left restore ${shellWord(arg)} --source ${id}` })
        }
        if (opts.json) return io.json(rows.map((r) => ({ id: r.cid.toString(), short: r.id, time: new Date(r.time).toISOString(), timestamp: r.time, author: r.author, kind: r.kind, size: r.size, here: r.here, restore: r.restore })))
        if (rows.length === 0) throw new PathNotFoundError(path, 'history')
        for (const r of rows) {
          const what = r.kind === null ? 'deleted' : r.kind === 'dir' ? 'a folder' : formatBytes(r.size ?? 0)
          const absent = r.here === false ? '  (content not here: restore fetches it from a peer)' : ''
          io.say(`${r.id}  ${formatDate(r.time)}  ${what.padEnd(10)}  by ${printable(r.author)}${r.restore === null ? '' : `  ${r.restore}`}${absent}`)
        }
      })
    })

  program.command('ls')
    .description('list a folder as a commit has it (default: HEAD), one entry a line')
    .argument('[path]', 'the folder: relative to where you are, or to the share folder (default: where you are)')
    .option('-s, --source <commit>', 'the commit to list (default HEAD)')
    .option('--json', 'print an array of entries as JSON')
    .action(async (arg: string | undefined, opts: { source?: string; json?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const path = repo.sharePath(workDir(cmd, rt), arg ?? '.')
        const entries = await repo.list(path, opts.source ?? 'HEAD')
        const full = (name: string): string => (path === '' ? name : `${path}/${name}`)
        if (opts.json) {
          return io.json(entries.map((e) => ({
            name: e.name, path: full(e.name), kind: e.kind, size: e.kind === 'dir' ? null : e.size,
            mtime: e.kind === 'file' ? new Date(e.mtime).toISOString() : null, exec: e.exec
          })))
        }
        for (const e of entries) {
          const size = e.kind === 'dir' ? '-' : formatBytes(e.size)
          const when = e.kind === 'file' ? formatDate(e.mtime) : ''
          io.say(`${e.kind === 'dir' ? 'd' : e.kind === 'link' ? 'l' : e.exec ? 'x' : 'f'}  ${size.padStart(10)}  ${when.padEnd(23)}  ${quotePath(full(e.name))}${e.kind === 'dir' ? '/' : ''}`)
        }
      })
    })

  program.command('reflog')
    .description('every commit HEAD has been at, newest first: HEAD@{0} is HEAD')
    .option('-n, --max-count <n>', 'show at most n entries')
    .option('--full-id', 'print whole commit ids')
    .option('--json', 'print an array of entries as JSON')
    .action(async (opts: { maxCount?: string; fullId?: boolean; json?: boolean }, cmd: Command) => {
      const limit = opts.maxCount === undefined ? Infinity : count(opts.maxCount, '-n')
      await rt.withRepo(cmd, async (repo) => {
        const entries = (await repo.reflog()).slice(0, limit)
        const name = idNamer(repo, opts.fullId ?? false)
        const rows = await Promise.all(entries.map(async (e) => ({ ...e, message: (await repo.commitOf(e.cid)).message })))
        if (opts.json) return io.json(rows.map((r) => ({ ref: `HEAD@{${r.index}}`, id: r.cid.toString(), time: new Date(r.time).toISOString(), timestamp: r.time, message: r.message })))
        if (rows.length === 0) io.warn('no commits yet')
        for (const r of rows) io.say(`${await name(r.cid)} HEAD@{${r.index}} ${formatDate(r.time)}  ${printable(r.message.split('\n')[0] ?? '')}`)
      })
    })
}

/** A word as a shell reads it back: as is when plain, else in single quotes. */
function shellWord(word: string): string {
  return /^[\w./@%+=:,-]+$/.test(word) ? word : `'${printable(word).replace(/'/g, "'\\''")}'`
}

async function entryJson(repo: Repo, e: LogEntry, files: boolean): Promise<Record<string, unknown>> {
  const first = summarize(e.changes[0]!)
  return {
    id: e.cid.toString(), short: await repo.shortId(e.cid), parents: e.commit.parents.map(String), tree: e.commit.tree.toString(),
    time: new Date(e.commit.time).toISOString(), timestamp: e.commit.time,
    author: e.commit.author, message: e.commit.message, ...first,
    ...(e.commit.parents.length > 1 ? { againstParents: e.commit.parents.map((p, i) => ({ parent: p.toString(), ...summarize(e.changes[i]!) })) } : {}),
    ...(files ? { files: e.changes[0]!.map((c) => ({ path: c.path, change: c.kind, kind: (c.after ?? c.before)!.kind, before: c.before?.size ?? null, after: c.after?.size ?? null })) } : {})
  }
}
