/**
 * Every failure LEFT reports on purpose is a LeftError with a stable `code`.
 * The message is for people and may change between versions; the code is the
 * contract (docs/errors.md lists them all). This module imports nothing.
 */

/** Base class of all deliberate LEFT errors. */
export class LeftError extends Error {
  /** Stable, machine-readable identifier such as `LEFT_NOT_A_REPO`. */
  readonly code: string
  /** Extra facts about the failure (paths, CIDs, peers), safe to print. */
  readonly data: Readonly<Record<string, unknown>>

  constructor(code: string, message: string, options: { cause?: unknown; data?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.data = Object.freeze({ ...(options.data ?? {}) })
  }
}

/** A command-line argument, address, option or commit reference is malformed. */
export class UsageError extends LeftError {
  constructor(message: string, data?: Record<string, unknown>) {
    super('LEFT_USAGE', message, { data: data ?? {} })
  }
}

/** No `.left/` directory was found where one was expected. */
export class NotARepoError extends LeftError {
  constructor(dir: string) {
    super('LEFT_NOT_A_REPO', `not a LEFT folder (no .left/ in ${dir} or above); run 'left init' first`, { data: { dir } })
  }
}

/** `left init` found an existing `.left/`. */
export class AlreadyInitializedError extends LeftError {
  constructor(dir: string) {
    super('LEFT_ALREADY_INITIALIZED', `already a LEFT folder: ${dir}`, { data: { dir } })
  }
}

/** The store is held by another LEFT process that is not a daemon (LevelDB allows one writer). */
export class StoreLockedError extends LeftError {
  constructor(path: string, cause?: unknown) {
    super('LEFT_STORE_LOCKED', `the store at ${path} is in use by another left command; try again when it has finished`, { cause, data: { path } })
  }
}

/** A LevelDB of the store is missing or cannot be read as one (its `CURRENT` file is gone, say). Nothing is changed. */
export class StoreDamagedError extends LeftError {
  constructor(path: string, cause?: unknown) {
    super('LEFT_STORE_DAMAGED', `the store database ${path} is missing or damaged (no CURRENT file); nothing was changed: put the files back or restore .left/store from a backup`, { cause, data: { path } })
  }
}

/** The store holds objects of another object format than this LEFT reads. Nothing is changed. */
export class StoreFormatError extends LeftError {
  constructor(path: string, readonly found: number, readonly wanted: number) {
    const what = found < wanted ? `'left migrate' rewrites it (on every peer of the folder)` : 'it was made by a newer left: use that one'
    super('LEFT_STORE_FORMAT', `the store ${path} holds object format ${found}, this left reads format ${wanted}; nothing was changed: ${what}`, { data: { path, found, wanted } })
  }
}

/** A daemon (`left watch` or `left serve`) already holds this folder; there is one per folder. */
export class DaemonRunningError extends LeftError {
  constructor(pid: number) {
    super('LEFT_DAEMON_RUNNING', `a LEFT daemon already runs for this folder (pid ${pid}); 'left stop' stops it`, { data: { pid } })
  }
}

/** The command needs a running daemon and none holds this folder. */
export class NoDaemonError extends LeftError {
  constructor(message = "no synchronizer is running for this folder (start one with 'left watch')") {
    super('LEFT_NO_DAEMON', message)
  }
}

/** A commit reference does not name exactly one commit. */
export class UnknownRevisionError extends LeftError {
  /** `or-path`: a word that could have been either, and is neither. */
  constructor(rev: string, reason: 'unknown' | 'ambiguous' | 'or-path' = 'unknown') {
    super(reason === 'ambiguous' ? 'LEFT_AMBIGUOUS_REVISION' : 'LEFT_UNKNOWN_REVISION',
      reason === 'ambiguous' ? `ambiguous commit prefix: ${rev}`
        : reason === 'or-path' ? `unknown commit or path: ${rev} (put -- before a path that is not in the share folder)`
          : `unknown commit: ${rev}`, { data: { rev } })
  }
}

/** Bytes do not decode to a valid LEFT object (bad CBOR, bad shape, bad name). */
export class InvalidObjectError extends LeftError {
  constructor(message: string, cause?: unknown) {
    super('LEFT_INVALID_OBJECT', message, { cause })
  }
}

/** An entry name is unsafe: empty, `.`, `..`, or contains `/` or NUL. */
export class InvalidNameError extends LeftError {
  constructor(name: string) {
    super('LEFT_INVALID_NAME', `invalid entry name: ${JSON.stringify(name)}`, { data: { name } })
  }
}

/** An object the operation needs is not in the store. */
export class MissingObjectError extends LeftError {
  constructor(cid: string) {
    super('LEFT_MISSING_OBJECT', `object not in store: ${cid}`, { data: { cid } })
  }
}

/**
 * A file's content is not in the store (its version was fetched as history
 * only, or forgotten) and no peer at hand could send it.
 */
export class ContentAbsentError extends LeftError {
  constructor(path: string, why: string) {
    super('LEFT_CONTENT_ABSENT', `the content of ${path} is not here (never fetched, or forgotten) ${why}`, { data: { path } })
  }
}

/** Bytes do not hash to the CID they were stored or sent under. */
export class HashMismatchError extends LeftError {
  constructor(cid: string) {
    super('LEFT_HASH_MISMATCH', `object does not match its CID: ${cid}`, { data: { cid } })
  }
}

/** A file in the share folder could not be read or written. */
export class FileAccessError extends LeftError {
  constructor(path: string, cause?: unknown) {
    const why = cause instanceof Error && 'code' in cause ? ` (${String((cause as NodeJS.ErrnoException).code)})` : ''
    super('LEFT_FILE_ACCESS', `cannot access ${path}${why}`, { cause, data: { path } })
  }
}

/**
 * The share folder is gone, or another folder stands at its path, since
 * this process opened the repo; nothing was read as deleted.
 */
export class ShareGoneError extends LeftError {
  constructor(share: string) {
    super('LEFT_SHARE_GONE', `the share folder ${share} was moved, deleted or replaced since LEFT opened it; nothing more was committed or written into it (put it back, or restart LEFT to take the folder now there)`, { data: { share } })
  }
}

/** Writing changes into the share folder would need more disk space than is free; nothing was written. */
export class NoSpaceError extends LeftError {
  constructor(needed: number, free: number) {
    super('LEFT_NO_SPACE', `not enough disk space for the incoming files: ${needed} bytes needed, ${free} free; nothing was written`, { data: { needed, free } })
  }
}

/** A file kept changing while LEFT read it, so no consistent snapshot exists. */
export class FileChangedError extends LeftError {
  constructor(path: string) {
    super('LEFT_FILE_CHANGED', `file changed while being read: ${path}; try again when it is quiet`, { data: { path } })
  }
}

/** The share folder has uncommitted changes and the command would overwrite them. */
export class DirtyWorktreeError extends LeftError {
  /** `example`: one of the paths, when the command can name them. */
  constructor(count: number, example?: string) {
    const which = example === undefined ? '' : count === 1 ? ` (${example})` : ` (${example} and ${count - 1} more)`
    super('LEFT_DIRTY_WORKTREE', `the share folder has ${count} uncommitted change(s)${which}; commit them or use --force`, { data: { count, ...(example === undefined ? {} : { example }) } })
  }
}

/**
 * A checkout stopped before it finished (killed, or a power cut), so the
 * folder may hold some of its files half-written; nothing may be committed
 * until a checkout finishes.
 */
export class CheckoutUnfinishedError extends LeftError {
  constructor(target: string, forced: boolean) {
    const again = `left checkout ${forced ? '--force ' : ''}${target}`
    super('LEFT_CHECKOUT_UNFINISHED', `a checkout of ${target} did not finish: run \`${again}\` to finish it, or \`left checkout --force <rev>\``, { data: { target, forced } })
  }
}

/** A path given on the command line is not in the snapshot. */
export class PathNotFoundError extends LeftError {
  constructor(path: string, rev: string) {
    super('LEFT_PATH_NOT_FOUND', `no such path in ${rev}: ${path}`, { data: { path, rev } })
  }
}

/** A configuration file or value is invalid. */
export class ConfigError extends LeftError {
  constructor(message: string, cause?: unknown) {
    super('LEFT_CONFIG', message, { cause })
  }
}

/** The peer broke the protocol: bad frame, bad message, wrong state, bad object. */
export class ProtocolError extends LeftError {
  constructor(message: string, cause?: unknown) {
    super('LEFT_PROTOCOL', message, { cause })
  }
}

/** The peer could not be reached over TCP. */
export class PeerUnreachableError extends LeftError {
  constructor(address: string, cause?: unknown) {
    const why = cause instanceof Error && 'code' in cause ? ` (${String((cause as NodeJS.ErrnoException).code)})` : ''
    super('LEFT_PEER_UNREACHABLE', `cannot reach peer ${address}${why}`, { cause, data: { address } })
  }
}

/** The TLS handshake failed: the folder keys differ, or the server is not a LEFT peer (it presented a certificate). */
export class AuthError extends LeftError {
  constructor(address: string, cause?: unknown, reason = 'rejected the handshake: the folder keys differ') {
    super('LEFT_AUTH', `peer ${address} ${reason}`, { cause, data: { address } })
  }
}

/** The peer went silent for longer than the protocol allows. */
export class TimeoutError extends LeftError {
  constructor(what: string) {
    super('LEFT_TIMEOUT', `timed out: ${what}`, { data: { what } })
  }
}

/** This peer cannot listen on the address it was given (in use, not local, no permission). */
export class ListenError extends LeftError {
  constructor(address: string, cause?: unknown) {
    const code = (cause as { code?: unknown } | undefined)?.code
    super('LEFT_LISTEN', `cannot listen on ${address}${typeof code === 'string' ? ` (${code})` : ''}`, { cause, data: { address } })
  }
}

/** `left sync` failed with more than one peer (each failure is reported on its own line first). */
export class SyncFailedError extends LeftError {
  /** `codes`: each failure's code, so a script can tell "all unreachable" from a mix. */
  constructor(count: number, readonly codes: readonly string[] = []) {
    super('LEFT_SYNC_FAILED', `sync failed with ${count} peers`, { data: { count, codes } })
  }
}

/** The network session ended before the operation completed. */
export class SessionClosedError extends LeftError {
  constructor(reason: string) {
    super('LEFT_SESSION_CLOSED', `connection closed: ${reason}`, { data: { reason } })
  }
}

/** The first line of any thrown value's message, for one-line logs. */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  return text.split('\n')[0] ?? text
}

/** Returns true when `err` is a LeftError carrying `code`. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof LeftError && err.code === code
}
