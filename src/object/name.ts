/**
 * Entry-name safety. A name from a directory node becomes one path segment
 * on disk, so anything that could climb or split a path is rejected here,
 * whenever an object is decoded and before any name reaches the filesystem.
 */
import { InvalidNameError } from '../errors.js'

const encoder = new TextEncoder()

/** The longest name in UTF-8 bytes; the usual filesystem limit. */
export const MAX_NAME_BYTES = 255

/** True when `name` is one safe path segment. */
export function isValidName(name: unknown): name is string {
  if (typeof name !== 'string' || name.length === 0) return false
  if (name === '.' || name === '..') return false
  if (name.includes('/') || name.includes('\0')) return false
  // Lone surrogates cannot round-trip through UTF-8 and so cannot be filenames.
  if (!name.isWellFormed()) return false
  return encoder.encode(name).length <= MAX_NAME_BYTES
}

/**
 * True when a file or folder named `name` can be committed: a valid name
 * that also survives a trip through dag-cbor. Its decoder (cborg's, a
 * default TextDecoder) drops a leading U+FEFF as a byte order mark, so a
 * peer would write such a file under another name. Decoding stays with
 * isValidName: a name stored with two marks decodes with one, and must
 * still read.
 */
export function isSyncableName(name: string): boolean {
  return isValidName(name) && !name.startsWith('\ufeff')
}

/** Throws InvalidNameError unless `name` is one safe path segment. */
export function assertValidName(name: unknown): asserts name is string {
  if (!isValidName(name)) throw new InvalidNameError(String(name))
}

/**
 * Orders names by their UTF-8 bytes, the canonical order of directory
 * entries, without encoding them: UTF-8 orders as code points do, and
 * UTF-16 code units order as code points do but for surrogates, which
 * stand for code points above every other unit's.
 */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codePointRank(x) - codePointRank(y)
  }
  return a.length - b.length
}

/** A UTF-16 code unit's place in code point order: surrogates (U+D800 to U+DFFF) after U+FFFF. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800
}

/** The share-relative path of entry `name` in the directory at `prefix` ('' is the root). */
export function childPath(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}/${name}`
}

/** The share-relative path of the directory that holds `path` ('' is the root): childPath's inverse. */
export function parentPath(path: string): string {
  const slash = path.lastIndexOf('/')
  return slash < 0 ? '' : path.slice(0, slash)
}
