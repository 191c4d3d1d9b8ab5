/**
 * What the store keeps: `left forget` applies a retention policy (restic's
 * names), `left stats` adds up what is kept. `left gc` (local.ts) returns
 * the space.
 */
import type { Command } from 'commander'
import { POLICY_FIELDS, type RetentionPolicy, UsageError, checkPolicy } from '../../src/index.js'
import type { Runtime } from '../context.js'
import { formatBytes } from '../output.js'
import { idNamer } from './history.js'

type ForgetFlags = { readonly [K in typeof POLICY_FIELDS[number]]?: string } & {
  dryRun?: boolean
  prune?: boolean
  remember?: boolean
  json?: boolean
  fullId?: boolean
}

/** The option a policy field comes from: keepLast is --keep-last. */
function flagOf(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}

/** The policy the flags give: `keepWithin` as typed (checkPolicy reads it), the others as whole numbers. */
function policyOf(opts: ForgetFlags): RetentionPolicy {
  const policy: Record<string, number | string> = {}
  for (const field of POLICY_FIELDS) {
    const text = opts[field]
    if (text === undefined) continue
    if (field === 'keepWithin') policy[field] = text
    else if (/^\d+$/.test(text) && Number(text) >= 1) policy[field] = Number(text)
    else throw new UsageError(`--${flagOf(field)} needs a whole number of at least 1, not ${JSON.stringify(text)}`)
  }
  return policy as RetentionPolicy
}

/** Registers forget and stats on `program`. */
export function registerRetentionCommands(program: Command, rt: Runtime): void {
  const { io } = rt
  program.command('forget')
    .description('stop keeping the content of old versions; their history stays, and `left gc` (or --prune) frees the space')
    .option('--keep-last <n>', 'keep the newest n commits')
    .option('--keep-within <duration>', 'keep commits made within this long of the newest (30d, 2w, 1y6m, 12h)')
    .option('--keep-hourly <n>', 'keep the newest commit of each of the last n hours that have one')
    .option('--keep-daily <n>', 'the same per day')
    .option('--keep-weekly <n>', 'the same per week')
    .option('--keep-monthly <n>', 'the same per month')
    .option('--keep-yearly <n>', 'the same per year')
    .option('-n, --dry-run', 'only say what would be forgotten')
    .option('--prune', 'run gc afterwards, freeing the space')
    .option('--remember', 'also save the policy in .left/config: `left watch` then applies it hourly, with gc')
    .option('--full-id', 'print whole commit ids')
    .option('--json', 'print the result as JSON')
    .action(async (opts: ForgetFlags, cmd: Command) => {
      const policy = policyOf(opts)
      // Before anything is remembered: a bad policy in the config would fail every later command.
      checkPolicy(policy)
      await rt.withRepo(cmd, async (repo) => {
        if (opts.remember && !opts.dryRun) await repo.remember({ retention: policy })
        const result = await repo.forget(policy, opts.dryRun ?? false)
        const pruned = opts.prune && !opts.dryRun ? await repo.gc() : undefined
        if (opts.json) {
          return io.json({
            kept: result.kept.map((k) => ({ id: k.cid.toString(), time: k.time, reasons: k.reasons })),
            forgotten: result.forgotten.map(String),
            alreadyForgotten: result.alreadyThin,
            dryRun: opts.dryRun ?? false,
            ...(pruned ? { removed: pruned.removed } : {})
          })
        }
        const name = idNamer(repo, opts.fullId ?? false)
        for (const k of result.kept) io.say(`keep   ${await name(k.cid)}  ${new Date(k.time).toISOString()}  (${k.reasons.join(', ')})`)
        const verb = opts.dryRun ? 'would forget' : 'forgot'
        io.say(`${verb} the content of ${result.forgotten.length} commit${result.forgotten.length === 1 ? '' : 's'}, kept ${result.kept.length}` +
          (result.alreadyThin > 0 ? ` (${result.alreadyThin} more had no content here already)` : '') + '; their history stays')
        if (opts.remember && !opts.dryRun) io.say('saved the policy: `left watch` applies it every hour')
        if (pruned !== undefined) io.say(`removed ${pruned.removed} objects no kept commit needs`)
        else if (!opts.dryRun && result.forgotten.length > 0) io.say('run `left gc` to free the space')
      })
    })

  program.command('stats')
    .description('what the store holds: its size, the content kept against the content referenced, and the dedup ratio')
    .option('--json', 'print the figures as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await rt.withRepo(cmd, async (repo) => {
        const s = await repo.stats()
        const ratio = s.referencedBytes === 0 ? 1 : s.versionsBytes / s.referencedBytes
        if (opts.json) return io.json({ ...s, dedupRatio: ratio })
        io.say(`commits:            ${s.commits} (${s.thinCommits} with history only: content never fetched, or forgotten)`)
        io.say(`all versions:       ${formatBytes(s.versionsBytes)} (every commit's snapshot, added up)`)
        io.say(`content referenced: ${formatBytes(s.referencedBytes)} (each chunk once; dedup ratio ${ratio.toFixed(2)}x)`)
        io.say(`content kept here:  ${formatBytes(s.keptBytes)}`)
        io.say(`store on disk:      ${formatBytes(s.storeBytes)}`)
      })
    })
}
