/**
 * The local history commands: init, key, commit, log, status, diff,
 * checkout, restore, fsck, gc. Each parses its flags, calls the repo
 * facade, and prints (human text, or JSON with --json).
 */
import type { Command } from 'commander'
import { Repo, UsageError, fsck, gc, summarize } from '../../src/index.js'
import { withRepo, workDir } from '../context.js'
import { changeJson, changeLine, formatBytes, formatDate, printJson, say, warn } from '../output.js'

function count(value: string, name: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive whole number, not ${JSON.stringify(value)}`)
  return n
}

/** Registers the local commands on `program`. */
export function registerLocalCommands(program: Command): void {
  program.command('init')
    .description('make this directory a LEFT folder: .left/ (store, config, key) and share/ beside it')
    .option('--key <key>', 'use this folder key (shared by all peers) instead of generating one')
    .option('--share <path>', 'share this folder instead of ./share')
    .action(async (opts: { key?: string; share?: string }, cmd: Command) => {
      const repo = await Repo.init(workDir(cmd), { key: opts.key, share: opts.share })
      try {
        say(`initialized LEFT folder in ${repo.layout.root} (sharing ${repo.share})`)
      } finally {
        await repo.close()
      }
    })

  program.command('key')
    .description('print the folder key; give it to peers with `left init --key`')
    .action(async (_opts: unknown, cmd: Command) => {
      // No store lock: this works while `left watch` runs.
      say((await Repo.readConfig(workDir(cmd))).key)
    })

  program.command('commit')
    .description('snapshot the share folder and print the new commit id')
    .option('-m, --message <msg>', 'commit message (default: a summary of the changes)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { message?: string; json?: boolean }, cmd: Command) => {
      await withRepo(cmd, async (repo) => {
        const result = await repo.commit(opts.message, { onSkip: (p, why) => warn(`left: skipped ${p}: ${why}`) })
        if (opts.json) printJson(result === undefined ? { id: null } : { id: result.cid.toString(), ...result.summary, filesHashed: result.filesHashed, bytesHashed: result.bytesHashed })
        else say(result === undefined ? 'nothing to commit' : result.cid.toString())
      })
    })

  program.command('log')
    .description('list commits, newest first')
    .argument('[commit]', 'start from this commit instead of HEAD (id, prefix, HEAD~N, HEAD^N)')
    .option('-n, --max-count <n>', 'show at most n commits')
    .option('--json', 'print an array of commits as JSON')
    .action(async (from: string | undefined, opts: { maxCount?: string; json?: boolean }, cmd: Command) => {
      const limit = opts.maxCount === undefined ? Infinity : count(opts.maxCount, '-n')
      await withRepo(cmd, async (repo) => {
        const entries = await repo.log(limit, from)
        if (opts.json) {
          printJson(entries.map((e) => ({
            id: e.cid.toString(), parents: e.commit.parents.map(String), tree: e.commit.tree.toString(),
            time: new Date(e.commit.time).toISOString(), timestamp: e.commit.time,
            author: e.commit.author, message: e.commit.message, ...e.summary
          })))
          return
        }
        if (entries.length === 0) warn('no commits yet')
        for (const e of entries) {
          say(`commit ${e.cid}${e.commit.parents.length > 1 ? ' (merge)' : ''}`)
          say(`Author: ${e.commit.author}`)
          say(`Date:   ${formatDate(e.commit.time)}`)
          say(`Change: ${e.summary.added} added, ${e.summary.modified} modified, ${e.summary.deleted} deleted`)
          say('')
          for (const line of e.commit.message.split('\n')) say(`    ${line}`)
          say('')
        }
      })
    })

  program.command('status')
    .description('show what changed in the share folder since the last commit')
    .option('--json', 'print an array of changes as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withRepo(cmd, async (repo) => {
        const changes = await repo.status()
        if (opts.json) return printJson(changes.map(changeJson))
        if (changes.length === 0) return say('nothing to commit, share folder clean')
        for (const c of changes) say(changeLine(c))
      })
    })

  program.command('diff')
    .description('compare two commits, or a commit (default HEAD) and the share folder')
    .argument('[from]', 'commit to compare from (default HEAD)')
    .argument('[to]', 'commit to compare to (default: the share folder)')
    .option('--json', 'print an array of changes as JSON')
    .action(async (from: string | undefined, to: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      await withRepo(cmd, async (repo) => {
        const changes = await repo.diff(from, to)
        if (opts.json) return printJson(changes.map(changeJson))
        for (const c of changes) say(changeLine(c))
        const s = summarize(changes)
        if (process.stdout.isTTY) warn(`${s.added} added, ${s.modified} modified, ${s.deleted} deleted`)
      })
    })

  program.command('checkout')
    .description('make the share folder exactly a commit\'s snapshot and move HEAD there')
    .argument('<commit>', 'commit id, unique prefix, HEAD, HEAD~N')
    .option('-f, --force', 'discard uncommitted changes in the share folder')
    .action(async (rev: string, opts: { force?: boolean }, cmd: Command) => {
      await withRepo(cmd, async (repo) => {
        const { cid, changes } = await repo.checkout(rev, opts.force ?? false)
        say(`HEAD is now ${cid} (${changes} path${changes === 1 ? '' : 's'} updated)`)
      })
    })

  program.command('restore')
    .description('bring back one file or folder from a commit (default HEAD)')
    .argument('<path>', 'path inside the share folder')
    .option('-s, --source <commit>', 'take it from this commit', 'HEAD')
    .action(async (path: string, opts: { source: string }, cmd: Command) => {
      await withRepo(cmd, async (repo) => {
        await repo.restore(path, opts.source)
        say(`restored ${path} from ${opts.source}`)
      })
    })

  program.command('fsck')
    .description('re-hash every reachable object and report what is missing or corrupt')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withRepo(cmd, async (repo) => {
        const report = await fsck(repo.store)
        if (opts.json) printJson(report)
        else {
          for (const c of report.missing) say(`missing ${c}`)
          for (const c of report.corrupt) say(`corrupt ${c}`)
          say(`checked ${report.objects} objects (${formatBytes(report.bytes)}): ${report.missing.length + report.corrupt.length === 0 ? 'ok' : 'DAMAGED'}`)
        }
        if (report.missing.length + report.corrupt.length > 0) process.exitCode = 1
      })
    })

  program.command('gc')
    .description('delete objects that no commit reaches')
    .action(async (_opts: unknown, cmd: Command) => {
      await withRepo(cmd, async (repo) => {
        const { removed, kept } = await gc(repo.store)
        say(`removed ${removed} unreachable objects, kept ${kept}`)
      })
    })
}
