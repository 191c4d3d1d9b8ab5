/**
 * Naming the copy that a merge conflict leaves beside the winning version,
 * in Syncthing's style, so people recognise it. The name is a pure function
 * of its inputs: every peer that merges the same pair picks the same name.
 */
import { MAX_NAME_BYTES } from '../object/index.js'

const encoder = new TextEncoder()

/** Longest peer label kept in a conflict name, in UTF-8 bytes. */
export const MAX_LABEL_BYTES = 64

/**
 * The name of the conflict copy of `name`:
 * `<stem>.sync-conflict-<label>-<YYYYMMDD-HHMMSS>[-<attempt>][.<ext>]`.
 *
 * - The extension starts at the last dot that is not the first character,
 *   so `a.tar.gz` → `a.tar.sync-conflict-….gz` and `.bashrc` keeps no
 *   extension.
 * - The time is `mtimeMs` (milliseconds since the epoch) in UTC.
 * - `label` (the peer that made the losing version) has `/`, NUL and
 *   control characters replaced by `_` and is cut to MAX_LABEL_BYTES.
 * - `attempt` > 1 appends `-<attempt>`, for when the first name is taken.
 * - The result is always a valid entry name: the stem is truncated (on a
 *   character boundary) to fit MAX_NAME_BYTES, and an extension too long to
 *   leave room is treated as part of the stem.
 */
export function conflictName(name: string, label: string, mtimeMs: number, attempt = 1): string {
  const tag = `.sync-conflict-${safeLabel(label)}-${utcStamp(mtimeMs)}${attempt > 1 ? `-${attempt}` : ''}`
  const dot = name.lastIndexOf('.')
  let stem = dot > 0 ? name.slice(0, dot) : name
  let ext = dot > 0 ? name.slice(dot) : ''
  if (byteLength(tag + ext) >= MAX_NAME_BYTES) {
    stem = name
    ext = ''
  }
  return truncateUtf8(stem, MAX_NAME_BYTES - byteLength(tag + ext)) + tag + ext
}

/** `YYYYMMDD-HHMMSS` in UTC; times past what Date can hold are clamped. */
function utcStamp(ms: number): string {
  const d = new Date(Math.min(Math.max(ms, 0), 8.64e15))
  const p = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`
}

function safeLabel(label: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = label.toWellFormed().replace(/[/\u0000-\u001f\u007f]/g, '_')
  return truncateUtf8(clean, MAX_LABEL_BYTES)
}

/** The longest prefix of `s` whose UTF-8 form fits in `max` bytes, never splitting a character. */
function truncateUtf8(s: string, max: number): string {
  if (byteLength(s) <= max) return s
  let out = ''
  let used = 0
  for (const ch of s) {
    const n = byteLength(ch)
    if (used + n > max) break
    out += ch
    used += n
  }
  return out
}

function byteLength(s: string): number {
  return encoder.encode(s).length
}

/** What a conflict copy's name says: the name it is a copy of, the peer's label, its time and attempt. */
export interface ConflictCopyName {
  /** The original's name, when the copy's name was not cut to fit (else the cut stem with the extension). */
  readonly original: string
  readonly label: string
  /** The losing version's mtime, to the second, as milliseconds since the epoch. */
  readonly time: number
  readonly attempt: number
}

const CONFLICT_TAG = /^(.*)\.sync-conflict-(.*)-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?:-(\d+))?((?:\.[^.]*)?)$/s

/**
 * Reads a name that conflictName made; undefined for any other name. The
 * inverse of conflictName, except where conflictName had to cut the stem.
 */
export function parseConflictName(name: string): ConflictCopyName | undefined {
  const m = CONFLICT_TAG.exec(name)
  if (m === null || m[1] === '') return undefined
  const [, stem, label, y, mo, d, h, mi, s, attempt, ext] = m as unknown as string[]
  const time = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s))
  // A stamp that Date would roll over (month 13, second 61) is not one utcStamp wrote.
  if (utcStamp(time) !== `${y}${mo}${d}-${h}${mi}${s}`) return undefined
  return { original: stem! + ext!, label: label!, time, attempt: attempt === undefined ? 1 : Number(attempt) }
}
