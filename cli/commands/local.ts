/**
 * The local history commands: init, key, commit, log, status, diff,
 * checkout, restore, fsck, gc. Each parses its flags, calls the repo
 * facade, and prints (human text, or JSON with --json).
 */
import type { Command } from 'commander'
import { Repo, UsageError, summarize } from '../../src/index.js'
import { type Runtime, workDir } from '../context.js'
import { changeJson, changeLine, formatBytes, formatDate, printable, quotePath } from '../output.js'
import { printNodeStatus, nodeStatusJson } from '../status.js'

function count(value: string, name: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive whole number, not ${JSON.stringify(value)}`)
  return n
}

/** Registers the local commands on `program`. */
export function registerLocalCommands(program: Command, rt: Runtime): void {
  const { io } = rt
  /** One line per path checkout or restore left alone, so none is a surprise. */
  const warnKept = (kept: readonly string[]): void => {
    for (const p of kept) io.warn(`left: kept ${quotePath(p)} as it is (ignored, holding ignored files, or edited meanwhile; --force replaces it)`)
  }
  program.command('init')
    .description('make this directory a LEFT folder: .left/ (store, config, key) and share/ beside it')
    .option('--key <key>', 'use this folder key (shared by all peers) instead of generating one')
    .option('--share <path>', 'share this folder instead of ./share')
    .action(async (opts: { key?: string; share?: string }, cmd: Command) => {
      const repo = await Repo.init(workDir(cmd, rt), { key: opts.key, share: opts.share })
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
    .description('snapshot the share folder and print the new commit id')
    .option('-m, --message <msg>', 'commit message (default: a summary of the changes)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { message?: string; json?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const progress = { onSkip: (p: string, why: string) => io.warn(`left: skipped ${quotePath(p)}: ${printable(why)}`) }
        // Beside a running synchronizer the commit is announced to its peers at once.
        const result = rt.node !== undefined ? await rt.node.service.commitAndAnnounce(opts.message, progress) : await repo.commit(opts.message, progress)
        if (opts.json) io.json(result === undefined ? { id: null } : { id: result.cid.toString(), ...result.summary, filesHashed: result.filesHashed, bytesHashed: result.bytesHashed })
        else io.say(result === undefined ? 'nothing to commit' : result.cid.toString())
      })
    })

  program.command('log')
    .description('list commits, newest first')
    .argument('[commit]', 'start from this commit instead of HEAD (id, prefix, HEAD~N, HEAD^N)')
    .option('-n, --max-count <n>', 'show at most n commits')
    .option('--json', 'print an array of commits as JSON')
    .action(async (from: string | undefined, opts: { maxCount?: string; json?: boolean }, cmd: Command) => {
      const limit = opts.maxCount === undefined ? Infinity : count(opts.maxCount, '-n')
      await rt.withRepo(cmd, async (repo) => {
        const entries = await repo.log(limit, from)
        if (opts.json) {
          io.json(entries.map((e) => ({
            id: e.cid.toString(), parents: e.commit.parents.map(String), tree: e.commit.tree.toString(),
            time: new Date(e.commit.time).toISOString(), timestamp: e.commit.time,
            author: e.commit.author, message: e.commit.message, ...e.summary
          })))
          return
        }
        if (entries.length === 0) io.warn('no commits yet')
        for (const e of entries) {
          io.say(`commit ${e.cid}${e.commit.parents.length > 1 ? ' (merge)' : ''}`)
          io.say(`Author: ${printable(e.commit.author)}`)
          io.say(`Date:   ${formatDate(e.commit.time)}`)
          io.say(`Change: ${e.summary.added} added, ${e.summary.modified} modified, ${e.summary.deleted} deleted`)
          io.say('')
          // Commit messages come from peers too: no raw control characters.
          for (const line of e.commit.message.split('\n')) io.say(`    ${printable(line)}`)
          io.say('')
        }
      })
    })

  program.command('status')
    .description('show the synchronizer and its peers, then what changed in the share folder since the last commit')
    .option('--json', 'print the synchronizer and the changes as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const node = rt.node === undefined ? undefined : await rt.node.service.status()
        const changes = await repo.status()
        if (opts.json) return io.json({ synchronizer: node === undefined ? null : nodeStatusJson(node), changes: changes.map(changeJson) })
        printNodeStatus(io, node)
        io.say('')
        if (changes.length === 0) return io.say('nothing to commit, share folder clean')
        for (const c of changes) io.say(changeLine(c))
      })
    })

  program.command('diff')
    .description('compare two commits, or a commit (default HEAD) and the share folder')
    .argument('[from]', 'commit to compare from (default HEAD)')
    .argument('[to]', 'commit to compare to (default: the share folder)')
    .option('--json', 'print an array of changes as JSON')
    .action(async (from: string | undefined, to: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const changes = await repo.diff(from, to)
        if (opts.json) return io.json(changes.map(changeJson))
        for (const c of changes) io.say(changeLine(c))
        const s = summarize(changes)
        if (io.stdoutIsTTY) io.warn(`${s.added} added, ${s.modified} modified, ${s.deleted} deleted`)
      })
    })

  program.command('checkout')
    .description('make the share folder exactly a commit\'s snapshot and move HEAD there')
    .argument('<commit>', 'commit id, unique prefix, HEAD, HEAD~N')
    .option('-f, --force', 'discard uncommitted changes, and replace ignored paths too')
    .action(async (rev: string, opts: { force?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const { cid, changes, kept } = await repo.checkout(rev, opts.force ?? false)
        warnKept(kept)
        io.say(`HEAD is now ${cid} (${changes} path${changes === 1 ? '' : 's'} updated)`)
      })
    })

  program.command('restore')
    .description('bring back one file or folder from a commit (default HEAD)')
    .argument('<path>', 'path inside the share folder')
    .option('-s, --source <commit>', 'take it from this commit', 'HEAD')
    .option('-f, --force', 'also delete uncommitted and ignored files in the way')
    .action(async (path: string, opts: { source: string; force?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        warnKept((await repo.restore(path, opts.source, opts.force ?? false)).kept)
        io.say(`restored ${quotePath(path)} from ${printable(opts.source)}`)
      })
    })

  program.command('fsck')
    .description('re-hash every reachable object and report what is missing or corrupt')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const report = await repo.fsck()
        if (opts.json) io.json(report)
        else {
          for (const c of report.missing) io.say(`missing ${c}`)
          for (const c of report.corrupt) io.say(`corrupt ${c}`)
          io.say(`checked ${report.objects} objects (${formatBytes(report.bytes)}): ${report.missing.length + report.corrupt.length === 0 ? 'ok' : 'DAMAGED'}`)
        }
        if (report.missing.length + report.corrupt.length > 0) io.exitCode = 1
      })
    })

  program.command('gc')
    .description('delete objects that no commit reaches')
    .action(async (_opts: unknown, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const { removed, kept } = await repo.gc()
        io.say(`removed ${removed} unreachable objects, kept ${kept}`)
      })
    })
}
