/**
 * `.leftignore` rules: gitignore syntax, read from the root of the share
 * folder, applied by commit, status and watch. The file itself is an ordinary
 * file and syncs like any other.
 */
import { lstat, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import ignore from 'ignore'

/** The name of the ignore file at the share root. */
export const IGNORE_FILE = '.leftignore'

/** Decides whether a share-relative posix path is ignored. */
export interface IgnoreRules {
  /** `isDir` matters because patterns like `build/` match only directories. */
  ignores(path: string, isDir: boolean): boolean
}

/** Rules that ignore nothing. */
export const NO_RULES: IgnoreRules = { ignores: () => false }

/** Builds rules from gitignore-syntax text. */
export function parseIgnoreRules(text: string): IgnoreRules {
  const ig = ignore().add(text)
  return {
    ignores(path, isDir) {
      return path !== '' && ig.ignores(isDir ? `${path}/` : path)
    }
  }
}

/**
 * Loads `<share>/.leftignore`; a missing file means no rules. Only a regular
 * file counts: LEFT never follows a symlink, and a `.leftignore` that is one
 * (it may have come from a peer) would make it read any file on the machine.
 */
export async function loadIgnoreRules(share: string): Promise<IgnoreRules> {
  const path = join(share, IGNORE_FILE)
  try {
    if (!(await lstat(path)).isFile()) return NO_RULES
    return parseIgnoreRules(await readFile(path, 'utf8'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return NO_RULES
    throw err
  }
}
