/**
 * The local commands: init, key, commit, status, diff, checkout, restore,
 * fsck, gc, migrate (log, versions and reflog are in history.ts). Each parses its
 * flags, calls the repo facade, and prints (human text, or JSON with --json).
 */
import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { type ContentFrom, OBJECT_FORMAT, hasCode, Pathspec, Repo, contentFrom, formatAddress, parseAddress, summarize } from '../../src/index.js'
import { type Runtime, workDir } from '../context.js'
import type { Io } from '../io.js'
import { changeJson, changeLine, formatBytes, printable, quotePath, summaryText } from '../output.js'
import { WorkLine } from '../progress.js'
import { idNamer, revisionsAndPaths } from './history.js'
import { printNodeStatus, nodeStatusJson } from '../status.js'

/** Runs `fn` with a progress line on stderr (a terminal only, and not with -q), erased when it ends. */
async function working<T>(io: Io, verb: string, unit: 'files' | 'objects', quiet: boolean | undefined, fn: (line: WorkLine) => Promise<T>): Promise<T> {
  const line = new WorkLine(io, verb, unit, quiet !== true)
  try {
    return await fn(line)
  } finally {
    line.clear()
  }
}

/** Registers the local commands on `program`. */
export function registerLocalCommands(program: Command, rt: Runtime): void {
  const { io } = rt
  /** One line per path checkout or restore left alone, so none is a surprise. */
  const warnKept = (kept: readonly string[]): void => {
    for (const p of kept) io.warn(`left: kept ${quotePath(p)} as it is (ignored, holding ignored files, or edited meanwhile; --force replaces it)`)
  }
  program.command('init')
    .description('make a directory (default: this one) a LEFT folder: .left/ (store, config, key) and share/ beside it')
    .argument('[dir]', 'the directory, made if it does not exist')
    .option('--key <key>', 'use this folder key (shared by all peers) instead of generating one')
    .option('--share <path>', 'share this folder instead of ./share')
    .action(async (dir: string | undefined, opts: { key?: string; share?: string }, cmd: Command) => {
      const root = resolve(workDir(cmd, rt), dir ?? '.')
      if (dir !== undefined) await mkdir(root, { recursive: true })
      const repo = await Repo.init(root, { key: opts.key, share: opts.share })
      try {
        io.say(`initialized LEFT folder in ${repo.layout.root} (sharing ${repo.share})`)
      } finally {
        await repo.close()
      }
    })

  program.command('key')
    .description('print the folder key; give it to peers with `left init --key`')
    .action(async (_opts: unknown, cmd: Command) => {
      // No store lock: this works while `left watch` runs.
      io.say((await Repo.readConfig(workDir(cmd, rt))).key)
    })

  program.command('commit')
    .description('snapshot the share folder: prints [short id] message (changes)')
    .option('-m, --message <msg>', 'commit message (default: names what changed)')
    .option('--full-id', 'print the whole commit id')
    .option('-q, --quiet', 'no progress display')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { message?: string; json?: boolean; fullId?: boolean; quiet?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const result = await working(io, 'committing', 'files', opts.quiet, (line) => {
          const progress = { ...line.hooks, onSkip: (p: string, why: string) => line.warn(`left: skipped ${quotePath(p)}: ${printable(why)}`) }
          // Beside a running synchronizer the commit is announced to its peers at once.
          return rt.node !== undefined ? rt.node.service.commitAndAnnounce(opts.message, progress) : repo.commit(opts.message, progress)
        })
        if (opts.json) return io.json(result === undefined ? { id: null } : { id: result.cid.toString(), short: await repo.shortId(result.cid), message: result.message, ...result.summary, filesHashed: result.filesHashed, bytesHashed: result.bytesHashed })
        if (result === undefined) return io.say('nothing to commit')
        const s = result.summary
        io.say(`[${await idNamer(repo, opts.fullId ?? false)(result.cid)}] ${printable(result.message.split('\n')[0] ?? '')} (${summaryText(s)})`)
      })
    })

  program.command('status')
    .description('show the synchronizer and its peers, then what changed in the share folder since the last commit')
    .argument('[paths...]', 'only these paths (relative to where you are)')
    .option('--json', 'print the synchronizer and the changes as JSON')
    .action(async (words: string[], opts: { json?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const node = rt.node === undefined ? undefined : await rt.node.service.status()
        const cwd = workDir(cmd, rt)
        const paths = new Pathspec(words.map((w) => repo.sharePath(cwd, w)))
        const changes = (await repo.status()).filter((c) => paths.matches(c.path))
        const unfinished = await repo.unfinishedCheckout()
        if (opts.json) return io.json({ folder: { share: repo.share, peer: repo.config.peerId }, synchronizer: node === undefined ? null : nodeStatusJson(node), unfinishedCheckout: unfinished ?? null, changes: changes.map(changeJson) })
        printNodeStatus(io, node)
        io.say('')
        if (unfinished !== undefined) io.say(`a checkout of ${unfinished.id} did not finish: run 'left checkout ${unfinished.forced ? '--force ' : ''}${unfinished.id}' to finish it\n`)
        if (changes.length === 0) return io.say('nothing to commit, share folder clean')
        for (const c of changes) io.say(changeLine(c))
      })
    })

  program.command('diff')
    .description('compare two commits, or a commit (default HEAD) and the share folder')
    .argument('[revisions-and-paths...]', 'commit to compare from (default HEAD), commit to compare to (default: the share folder), then paths, or paths after --')
    .option('--json', 'print an array of changes as JSON')
    .action(async (words: string[], opts: { json?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const { revs, paths } = await revisionsAndPaths(repo, cmd, rt, words, 2)
        const spec = new Pathspec(paths)
        const changes = (await repo.diff(revs[0], revs[1])).filter((c) => spec.matches(c.path))
        if (opts.json) return io.json(changes.map(changeJson))
        for (const c of changes) io.say(changeLine(c))
        const s = summarize(changes)
        if (io.stdoutIsTTY) io.warn(summaryText(s))
      })
    })

  /**
   * Where checkout and restore fetch old content that is not here: the peer
   * named with --from, else the running synchronizer's peers, else nowhere.
   */
  const withContent = async <T>(repo: Repo, from: string | undefined, fn: (content: ContentFrom) => Promise<T>): Promise<T> => {
    if (from === undefined) {
      const network = rt.node?.service.network
      return fn(network === undefined ? {} : { source: network.contentSource(), absentWhy: 'and no connected peer has it' })
    }
    const address = parseAddress(from)
    // Beside a running synchronizer already connected to that peer, over that session.
    const live = rt.node?.service.sessionAt(address)
    if (live !== undefined) return fn({ source: live, absentWhy: `and ${formatAddress(address)} does not have it either` })
    const peer = contentFrom(repo, address)
    try {
      return await fn(peer)
    } finally {
      await peer.close()
    }
  }
  program.command('checkout')
    .description('make the share folder exactly a commit\'s snapshot and move HEAD there')
    .argument('<commit>', 'short id, commit id or prefix, HEAD, HEAD~N, HEAD@{N}')
    .option('-f, --force', 'discard uncommitted changes, and replace ignored paths too')
    .option('--from <peer>', 'fetch content that is not here from this peer (host[:port])')
    .option('-q, --quiet', 'no progress display')
    .action(async (rev: string, opts: { force?: boolean; quiet?: boolean; from?: string }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const { cid, changes, kept } = await withContent(repo, opts.from, (content) =>
          working(io, 'checking out', 'files', opts.quiet, (line) => repo.checkout(rev, opts.force ?? false, line.hooks, { ...content, onProgress: (p) => line.fetching(p) })))
        warnKept(kept)
        io.say(`HEAD is now ${await repo.shortId(cid)} (${changes} path${changes === 1 ? '' : 's'} updated)`)
      })
    })

  program.command('restore')
    .description('bring back one file or folder from a commit (default HEAD)')
    .argument('<path>', 'what to bring back: relative to where you are, or to the share folder')
    .option('-s, --source <commit>', 'take it from this commit', 'HEAD')
    .option('-f, --force', 'also delete uncommitted and ignored files in the way')
    .option('--from <peer>', 'fetch content that is not here from this peer (host[:port])')
    .option('-q, --quiet', 'no progress display')
    .action(async (path: string, opts: { source: string; force?: boolean; quiet?: boolean; from?: string }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const rel = repo.sharePath(workDir(cmd, rt), path)
        const result = await withContent(repo, opts.from, (content) =>
          working(io, 'restoring', 'files', opts.quiet, (line) => repo.restore(rel, opts.source, opts.force ?? false, line.hooks, { ...content, onProgress: (p) => line.fetching(p) })))
        warnKept(result.kept)
        io.say(`restored ${quotePath(path)} from ${printable(opts.source)}`)
      })
    })

  program.command('fsck')
    .description('re-hash every reachable object and report what is missing or corrupt')
    .option('-q, --quiet', 'no progress display')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean; quiet?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const report = await working(io, 'checking', 'objects', opts.quiet, (line) => repo.fsck(line.hooks))
        if (opts.json) io.json(report)
        else {
          for (const c of report.missing) io.say(`missing ${c}`)
          for (const c of report.corrupt) io.say(`corrupt ${c}`)
          const { chunks, bytes } = report.absent
          if (chunks > 0) io.say(`${chunks} chunk${chunks === 1 ? '' : 's'} (${formatBytes(bytes)}) of old versions not here: never fetched, or forgotten; checkout and restore fetch them from a peer`)
          // The verdict comes last, on a line of its own.
          io.say(`checked ${report.objects} objects (${formatBytes(report.bytes)}): ${report.missing.length + report.corrupt.length === 0 ? 'ok' : 'DAMAGED'}`)
        }
        if (report.missing.length + report.corrupt.length > 0) io.exitCode = 1
      })
    })

  program.command('gc')
    .description('delete objects that no commit reaches')
    .option('-q, --quiet', 'no progress display')
    .action(async (opts: { quiet?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const { removed, kept } = await working(io, 'collecting', 'objects', opts.quiet, (line) => repo.gc(line.hooks))
        io.say(`removed ${removed} unreachable objects, kept ${kept}`)
      })
    })

  program.command('migrate')
    .description('rewrite a store made by an older LEFT in the object format this one reads (every peer of the folder does it)')
    .action(async (_opts: unknown, cmd: Command) => {
      const current = (): void => io.say(`the store is in object format ${OBJECT_FORMAT} already; nothing to do`)
      // A running synchronizer has opened the store, so it is current already.
      if (rt.node !== undefined) return current()
      let result: Awaited<ReturnType<typeof Repo.migrate>>
      try {
        result = await Repo.migrate(workDir(cmd, rt))
      } catch (err) {
        if (!hasCode(err, 'LEFT_STORE_LOCKED')) throw err
        // Held by a synchronizer: it answers, as for any command.
        return rt.withRepo(cmd, async () => current())
      }
      if (result === undefined) return current()
      const head = result.shortHead === undefined ? '' : `; HEAD is ${result.shortHead}`
      io.say(`migrated ${result.commits} commits and ${result.directories} directories from object format ${result.from} to ${OBJECT_FORMAT}, and removed ${result.gc.removed} old objects${head}`)
    })
}
