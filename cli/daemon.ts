/**
 * The daemon side of the CLI: while `left watch` or `left serve` runs, it
 * listens on the folder's control socket and runs each client's command line
 * through the same program definition (cli/program.ts), in a runtime that
 * uses this process's open folder and node, with output streamed back.
 */
import { type ControlHandler, type FolderService, type GuiServer, type PeerAddress, type Repo, errorMessage, formatAddress, listenControl, listenGui } from '../src/index.js'
import { type DaemonNode, daemonRuntime } from './context.js'
import { Io } from './io.js'
import { runProgram } from './program.js'

/** Where the status page is served, and its token. */
export interface PageSettings {
  readonly address: PeerAddress
  readonly token: string
}

/**
 * Serves the control socket (and the status page, given `page`) until
 * SIGINT, SIGTERM or `left stop`, then stops `service`, waits for running
 * commands, and closes `repo`. Logs `ready` once the socket listens.
 */
export async function runDaemon(repo: Repo, service: FolderService, log: (line: string) => void, ready: string, page?: PageSettings): Promise<void> {
  let stopping: Promise<void> | undefined
  let stopped!: () => void
  const done = new Promise<void>((resolve) => { stopped = resolve })
  const stop = (): Promise<void> => {
    stopping ??= service.stop().finally(stopped)
    return stopping
  }
  const node: DaemonNode = { repo, service, stop }
  const run = handler(node)
  let control
  let gui: GuiServer | undefined
  try {
    control = await listenControl({ leftDir: repo.layout.leftDir, root: repo.layout.root, handler: run, log })
  } catch (err) {
    await service.stop()
    await repo.close()
    throw err
  }
  if (page !== undefined) {
    try {
      // The page runs its commands through the same handler as the socket: one definition of each.
      gui = await listenGui({ ...page.address, token: page.token, handler: run, shareDir: repo.share, log })
    } catch (err) {
      // The page is a view of the synchronizer; syncing goes on without it.
      log(`no status page: ${errorMessage(err)}; 'left watch --gui HOST:PORT' picks another address`)
    }
  }
  log(ready)
  if (gui !== undefined) log(`status page on http://${formatAddress({ host: gui.host, port: gui.port })}/ ('left gui' prints its address with the token)`)
  const onSignal = (signal: string): void => {
    // A second signal: the user wants out now. The store is safe at any instant.
    if (stopping !== undefined) process.exit(130)
    log(`${signal}: shutting down`)
    void stop()
  }
  const onInt = (): void => onSignal('SIGINT')
  const onTerm = (): void => onSignal('SIGTERM')
  process.on('SIGINT', onInt)
  process.on('SIGTERM', onTerm)
  try {
    await done
    await stopping
  } finally {
    // Commands still running (a log, the `left stop` itself) finish before the store closes.
    await gui?.close()
    await control.close()
    await repo.close()
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
  }
}

/** Runs each request's command line as this process would, writing to the client. */
function handler(node: DaemonNode): ControlHandler {
  return async (request, output) => {
    const io = new Io(output.stdout, output.stderr, request.terminal, output.gone)
    // runProgram reports every failure itself and resolves with the exit code.
    return runProgram(daemonRuntime(io, request.cwd, request.argv, node), request.argv)
  }
}
