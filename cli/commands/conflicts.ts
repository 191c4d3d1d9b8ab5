/**
 * The conflict commands: `conflicts` lists the conflict copies a merge left
 * in the folder, beside the versions they compete with; `resolve` keeps one
 * of the two. Resolving changes the folder only; the next commit records it
 * (the status page commits at once).
 */
import type { Command } from 'commander'
import { type ConflictCopy, type DirEntry, UsageError } from '../../src/index.js'
import { type Runtime, workDir } from '../context.js'
import { formatBytes, formatDate, printable, quotePath } from '../output.js'

/** Registers conflicts and resolve on `program`. */
export function registerConflictCommands(program: Command, rt: Runtime): void {
  const { io } = rt
  program.command('conflicts')
    .description('list the conflict copies in the folder, each beside the version it competes with')
    .option('--json', 'print an array of conflicts as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const found = await repo.conflicts()
        if (opts.json) return io.json(found.map(conflictJson))
        if (found.length === 0) return io.say('no conflict copies')
        for (const c of found) {
          io.say(`${quotePath(c.path)}`)
          io.say(`  this: ${c.original === undefined ? 'deleted' : version(c.original)}`)
          io.say(`  that: ${version(c.copyEntry)}, by ${printable(c.label)}  ${quotePath(c.copy)}`)
        }
      })
    })

  program.command('resolve')
    .description('end a conflict: keep this version (delete the copy) or that one (the copy replaces it)')
    .argument('<copy>', 'the conflict copy, as `left conflicts` names it')
    .requiredOption('--keep <which>', '"this" keeps the file and deletes the copy; "that" puts the copy in its place')
    .action(async (copy: string, opts: { keep: string }, cmd: Command) => {
      if (opts.keep !== 'this' && opts.keep !== 'that') throw new UsageError(`--keep must be "this" or "that", not ${JSON.stringify(opts.keep)}`)
      await rt.withRepo(cmd, async (repo) => {
        const path = repo.sharePath(workDir(cmd, rt), copy)
        const original = await repo.resolveConflict(path, opts.keep === 'this' ? 'original' : 'copy')
        io.say(opts.keep === 'this' ? `kept ${quotePath(original)}; deleted ${quotePath(path)}` : `kept ${quotePath(path)} as ${quotePath(original)}`)
      })
    })
}

function version(e: DirEntry): string {
  return `${e.kind === 'link' ? 'a link' : formatBytes(e.size)}${e.kind === 'file' ? `, ${formatDate(e.mtime)}` : ''}`
}

function entryJson(e: DirEntry | undefined): Record<string, unknown> | null {
  if (e === undefined) return null
  return { kind: e.kind, size: e.size, mtime: e.kind === 'file' ? new Date(e.mtime).toISOString() : null }
}

function conflictJson(c: ConflictCopy): Record<string, unknown> {
  return { path: c.path, copy: c.copy, peer: c.label, time: new Date(c.time).toISOString(), this: entryJson(c.original), that: entryJson(c.copyEntry) }
}
