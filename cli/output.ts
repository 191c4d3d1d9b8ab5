/**
 * How the CLI talks to people and scripts: one-line errors on stderr, and a
 * few shared formats (change lines, dates, sizes).
 */
import { LeftError, SyncFailedError } from '../src/index.js'
import type { Change } from '../src/index.js'
import type { Io } from './io.js'

/**
 * Exit codes, the contract for scripts (docs/cli.md lists them). Anything
 * not named here is EXIT_FAILURE.
 */
export const EXIT_FAILURE = 1
/** A malformed command line. */
export const EXIT_USAGE = 2
/** A store that is missing or damaged: nothing was changed, and retrying will not help. */
export const EXIT_DAMAGED = 3
/** No LEFT folder here or above. */
export const EXIT_NOT_A_FOLDER = 4
/** A peer could not be reached. */
export const EXIT_UNREACHABLE = 5
/** A peer refused our key, or offered another. */
export const EXIT_AUTH = 6
/** Sync ran, but did not end in sync: a timeout, a dropped session, a peer that broke the protocol, or failures of more than one kind. */
export const EXIT_NOT_IN_SYNC = 7
/** `left sync` ended in sync, but kept both versions of a file edited on both sides: there is a conflict copy to look at. */
export const EXIT_CONFLICT_KEPT = 8

const EXIT_BY_CODE: Readonly<Record<string, number>> = {
  LEFT_USAGE: EXIT_USAGE,
  LEFT_STORE_DAMAGED: EXIT_DAMAGED,
  LEFT_STORE_FORMAT: EXIT_DAMAGED,
  LEFT_NOT_A_REPO: EXIT_NOT_A_FOLDER,
  LEFT_PEER_UNREACHABLE: EXIT_UNREACHABLE,
  LEFT_AUTH: EXIT_AUTH,
  LEFT_TIMEOUT: EXIT_NOT_IN_SYNC,
  LEFT_SESSION_CLOSED: EXIT_NOT_IN_SYNC,
  LEFT_PROTOCOL: EXIT_NOT_IN_SYNC
}

/** The exit code for a failure: by its code; a sync with several failed peers by theirs, when they agree. */
export function exitCodeOf(err: unknown): number {
  if (!(err instanceof LeftError)) return EXIT_FAILURE
  if (err instanceof SyncFailedError) {
    const exits = new Set(err.codes.map((c) => EXIT_BY_CODE[c] ?? EXIT_FAILURE))
    return exits.size === 1 ? [...exits][0]! : EXIT_NOT_IN_SYNC
  }
  return EXIT_BY_CODE[err.code] ?? EXIT_FAILURE
}

/**
 * Reports a failure as one line on stderr (plus the stack with LEFT_DEBUG=1)
 * and returns the exit code to use. With `json`, stdout also gets
 * `{"error": {"code", "message"}}`, so a script reading --json output
 * always gets one JSON value.
 */
export function reportError(err: unknown, io: Io, json = false): number {
  const debug = io.debug
  if (err instanceof LeftError) {
    io.warn(`left: ${printable(err.message)}`)
    if (debug) io.warn(String(err.stack ?? '') + (err.cause ? `\ncause: ${String((err.cause as Error).stack ?? err.cause)}` : ''))
    if (json) io.json({ error: { code: err.code, message: err.message } })
    return exitCodeOf(err)
  }
  const message = err instanceof Error ? err.message : String(err)
  io.warn(`left: unexpected error: ${printable(message.split('\n')[0] ?? '')} (run with LEFT_DEBUG=1 for details)`)
  if (debug && err instanceof Error) io.warn(String(err.stack))
  if (json) io.json({ error: { code: 'LEFT_UNEXPECTED', message } })
  return EXIT_FAILURE
}

/**
 * Characters that must never reach a terminal raw: C0 and C1 controls, DEL,
 * and the bidirectional overrides and isolates that reorder what is shown.
 * A name from a peer could otherwise forge log lines, move the cursor or
 * retitle the terminal.
 */
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g
/** The same set, for a test: a global pattern keeps state between `test` calls. */
const HAS_UNPRINTABLE = new RegExp(UNPRINTABLE.source)
const NAMED: Readonly<Record<string, string>> = { '\t': '\\t', '\n': '\\n', '\r': '\\r', '\x1b': '\\e' }

function escapeChar(ch: string): string {
  const named = NAMED[ch]
  if (named !== undefined) return named
  const code = ch.codePointAt(0)!
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`
}

/** `text` as one safe line: every unprintable character written as an escape (`\e`, `\x07`, `\u{202e}`). */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escapeChar)
}

/**
 * A path as git prints it: as is when plain, else in double quotes with
 * `"` and `\\` escaped and every unprintable character as an escape.
 */
export function quotePath(path: string): string {
  if (!HAS_UNPRINTABLE.test(path) && !/["\\]/.test(path)) return path
  return `"${printable(path.replace(/[\\"]/g, (c) => `\\${c}`))}"`
}

const LETTER = { added: 'A', modified: 'M', deleted: 'D' } as const

/** `A path`, `M path`, `D dir/`: the name-status format of status and diff. */
export function changeLine(c: Change): string {
  const entry = c.after ?? c.before
  return `${LETTER[c.kind]} ${quotePath(c.path + (entry?.kind === 'dir' ? '/' : ''))}`
}

/** A change as JSON. */
export function changeJson(c: Change): Record<string, unknown> {
  const entry = c.after ?? c.before
  return { path: c.path, change: c.kind, kind: entry?.kind, size: c.after?.size ?? null }
}

/** `2026-11-24 13:05:09 UTC`. */
export function formatDate(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
}

/** Human byte counts: `1.5 MiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`
}

/** Running totals of a transfer. */
export interface TransferTotals {
  readonly files: number
  readonly bytes: number
  readonly expectedBytes: number
}

/** Rate (bytes per second) and time left (seconds, null when unknown) of a transfer running for `seconds`. */
export function transferRate(t: TransferTotals, seconds: number): { rate: number; etaSeconds: number | null } {
  const rate = t.bytes / Math.max(0.001, seconds)
  const left = Math.max(0, t.expectedBytes - t.bytes)
  return { rate, etaSeconds: rate > 0 && left > 0 ? Math.ceil(left / rate) : null }
}

/**
 * A transfer in words, most important first: `12 files (~40.0 MiB)`,
 * `1.5 MiB received`, then `3.2 MiB/s` and `ETA ~12 s` when the time it has
 * run is known. Files and their sizes are what the fetch has found missing
 * so far; bytes are what arrived (folders and file nodes included, chunks
 * already here not), so the two are never presented as one fraction, and
 * the ETA is an estimate.
 */
export function transferParts(t: TransferTotals, seconds?: number): string[] {
  const parts = [`${t.files} file${t.files === 1 ? '' : 's'} (~${formatBytes(t.expectedBytes)})`, `${formatBytes(t.bytes)} received`]
  if (seconds === undefined) return parts
  const { rate, etaSeconds } = transferRate(t, seconds)
  parts.push(`${formatBytes(Math.round(rate))}/s`)
  if (etaSeconds !== null) parts.push(`ETA ~${formatSeconds(etaSeconds)}`)
  return parts
}

/** transferParts as one line. */
export function transferText(t: TransferTotals, seconds?: number): string {
  return transferParts(t, seconds).join(', ')
}

/**
 * `head: part, part, …` fitted to `columns`: the last parts are dropped
 * whole until it fits, and only a head too long on its own is cut.
 */
export function fitLine(head: string, parts: readonly string[], columns: number): string {
  const width = Math.max(20, columns - 1)
  for (let n = parts.length; n >= 0; n--) {
    const line = n === 0 ? head : `${head}: ${parts.slice(0, n).join(', ')}`
    if (line.length <= width) return line
  }
  return head.slice(0, width)
}

/** Human durations: `42 s`, `3 min 5 s`, `2 h 10 min`. */
export function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)} s`
  const m = Math.floor(s / 60)
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`
}

/** `3 added, 1 modified, 0 deleted`. */
export function summaryText(s: { readonly added: number; readonly modified: number; readonly deleted: number }): string {
  return `${s.added} added, ${s.modified} modified, ${s.deleted} deleted`
}
