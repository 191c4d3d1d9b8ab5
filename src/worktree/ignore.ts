/**
 * Ignore rules, in gitignore syntax, from two files: `.leftignore` at the
 * root of the share folder (an ordinary file that syncs, so every peer
 * shares its rules) and `.left/ignore` (this device only, never synced).
 * An ignored path is out of LEFT's hands on this device: it is not scanned,
 * written or deleted here, and history keeps whatever entry it had (see
 * docs/cli.md, "Ignoring files").
 */
import { lstat, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import ignore from 'ignore'

/** The name of the shared ignore file at the share root. */
export const IGNORE_FILE = '.leftignore'
/** The name of the device-local ignore file inside `.left/`. */
export const LOCAL_IGNORE_FILE = 'ignore'

/** Decides whether a share-relative posix path is ignored. */
export interface IgnoreRules {
  /** False when no rule is set, so callers can skip work that only ignored paths need. */
  readonly active: boolean
  /** The rules' source text: rules with the same text ignore the same paths. */
  readonly text: string
  /** `isDir` matters because patterns like `build/` match only directories. */
  ignores(path: string, isDir: boolean): boolean
}

/** Rules that ignore nothing. */
export const NO_RULES: IgnoreRules = { active: false, text: '', ignores: () => false }

/** Builds rules from gitignore-syntax texts (later texts can negate earlier rules, as in git). */
export function parseIgnoreRules(...texts: string[]): IgnoreRules {
  const text = texts.join('\n')
  const active = text.split(/\r?\n/).some((line) => line.trim() !== '' && !line.startsWith('#'))
  if (!active) return NO_RULES
  const ig = ignore().add(text)
  return {
    active,
    text,
    ignores(path, isDir) {
      return path !== '' && ig.ignores(isDir ? `${path}/` : path)
    }
  }
}

/**
 * Loads `<share>/.leftignore` and then `<leftDir>/ignore`; a missing file
 * adds no rules. Only a regular file counts: LEFT never follows a symlink,
 * and a `.leftignore` that is one (it may have come from a peer) would make
 * it read any file on the machine.
 */
export async function loadIgnoreRules(share: string, leftDir?: string): Promise<IgnoreRules> {
  const texts = [await readRegularFile(join(share, IGNORE_FILE))]
  if (leftDir !== undefined) texts.push(await readRegularFile(join(leftDir, LOCAL_IGNORE_FILE)))
  return parseIgnoreRules(...texts)
}

async function readRegularFile(path: string): Promise<string> {
  try {
    if (!(await lstat(path)).isFile()) return ''
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return ''
    throw err
  }
}
