/**
 * Where a command runs. Every command is defined once (cli/commands/) and
 * reaches the folder through a Runtime:
 *
 * - in this process (`localRuntime`), it opens the store itself; when a
 *   running daemon (`left watch` or `left serve`) holds the store, the whole
 *   command line is sent to that daemon over its control socket instead,
 *   and its output and exit code are relayed here unchanged;
 * - inside the daemon (`daemonRuntime`), it uses the daemon's open folder
 *   and running node, and writes to the client that asked.
 */
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { DaemonRunningError, type FolderService, Repo, connectDaemon, hasCode } from '../src/index.js'
import type { Io } from './io.js'

/** How long a command waits for a store held by another short-lived `left` (not a daemon). */
const LOCK_WAIT_MS = 10_000

/** The running synchronizer, as its commands see it. */
export interface DaemonNode {
  readonly repo: Repo
  readonly service: FolderService
  /** Stops syncing and watching; the daemon exits once running commands end. */
  stop(): Promise<void>
}

/** What a command may use. */
export interface Runtime {
  readonly io: Io
  /** The caller's working directory. */
  readonly cwd: string
  /** The command line after `left`, as typed (commander drops a `--`; commands that care look here). */
  readonly argv: readonly string[]
  /** The running node, when this run happens inside the daemon. */
  readonly node: DaemonNode | undefined
  /**
   * Runs `fn` with the folder's repo. Resolves without calling `fn` when the
   * command was run by a daemon instead (its output and exit code are on `io`).
   */
  withRepo(cmd: Command, fn: (repo: Repo) => Promise<void>): Promise<void>
  /**
   * Opens the folder for a command that becomes the daemon (serve, watch):
   * the caller owns and closes the repo. Undefined when a daemon ran the
   * command instead (and refused it: one daemon per folder).
   */
  ownRepo(cmd: Command): Promise<Repo | undefined>
}

/** The directory a command runs in: `-C DIR` (relative to the caller's cwd) or the cwd. */
export function workDir(cmd: Command, rt: Pick<Runtime, 'cwd'>): string {
  const dir = cmd.optsWithGlobals()['C'] as string | undefined
  return resolve(rt.cwd, dir ?? '.')
}

/** A runtime for this process; `argv` is the command line after `left`, sent as is to a daemon. */
export function localRuntime(io: Io, argv: readonly string[]): Runtime {
  const cwd = process.cwd()
  const open = (cmd: Command): Promise<Repo | undefined> => openOrForward(workDir(cmd, { cwd }), io, argv, cwd)
  return {
    io, cwd, argv, node: undefined,
    async withRepo(cmd, fn) {
      const repo = await open(cmd)
      if (repo === undefined) return
      try {
        await fn(repo)
      } finally {
        await repo.close()
      }
    },
    ownRepo: open
  }
}

/** A runtime for one request inside the daemon. */
export function daemonRuntime(io: Io, cwd: string, argv: readonly string[], node: DaemonNode): Runtime {
  return {
    io, cwd, argv, node,
    withRepo: async (_cmd, fn) => fn(node.repo),
    ownRepo: () => Promise.reject(new DaemonRunningError(process.pid))
  }
}

/**
 * Opens the folder at or above `dir`. When its store is held, asks the
 * daemon that holds it to run the command, and resolves undefined once it
 * has. A store held by another short-lived `left` is waited for a while.
 */
async function openOrForward(dir: string, io: Io, argv: readonly string[], cwd: string): Promise<Repo | undefined> {
  const deadline = Date.now() + LOCK_WAIT_MS
  for (;;) {
    try {
      return await Repo.open(dir)
    } catch (err) {
      if (!hasCode(err, 'LEFT_STORE_LOCKED')) throw err
      const daemon = await connectDaemon((await Repo.layoutOf(dir)).leftDir)
      if (daemon !== undefined) {
        io.exitCode = await daemon.run({ argv, cwd, terminal: io.terminal }, { stdout: (t) => io.out(t), stderr: (t) => io.err(t) })
        return undefined
      }
      // Another left command, or a daemon still starting or stopping.
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}
