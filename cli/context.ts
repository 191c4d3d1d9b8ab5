/** Shared plumbing for commands: where to run, and opening the repo around an action. */
import type { Command } from 'commander'
import { Repo } from '../src/index.js'

/** The directory a command runs in: `-C DIR` or the current directory. */
export function workDir(cmd: Command): string {
  const dir = cmd.optsWithGlobals()['C'] as string | undefined
  return dir ?? process.cwd()
}

/** Opens the repo for `cmd`, runs `fn`, and always closes it. */
export async function withRepo<T>(cmd: Command, fn: (repo: Repo) => Promise<T>): Promise<T> {
  const repo = await Repo.open(workDir(cmd))
  try {
    return await fn(repo)
  } finally {
    await repo.close()
  }
}
