/**
 * Pathspecs, as git reads them: which share-relative paths a list of
 * patterns names. Pure: patterns arrive already relative to the share
 * folder (the CLI converts what the user typed, see Repo.sharePath).
 *
 * A pattern names a path when it equals it, when it is a folder above it
 * (`docs` names `docs/a.txt`), or when it matches it as a glob: `*` and `?`
 * match any characters, `/` included (git's default, not fnmatch's
 * FNM_PATHNAME), and `[...]` a set. The empty pattern names everything.
 */

/** A compiled list of patterns. No patterns: every path matches. */
export class Pathspec {
  private readonly literal: readonly string[]
  private readonly globs: readonly RegExp[]

  constructor(readonly patterns: readonly string[]) {
    this.literal = patterns.filter((p) => !hasGlob(p))
    this.globs = patterns.filter(hasGlob).map(globRegExp)
  }

  /** True when no pattern limits anything. */
  get all(): boolean {
    return this.patterns.length === 0 || this.literal.includes('')
  }

  /** True when `path` (share-relative, no leading or trailing slash) is named. */
  matches(path: string): boolean {
    if (this.all) return true
    for (const p of this.literal) if (path === p || path.startsWith(p + '/')) return true
    // A glob also names what lies below a path it matches, as a folder name does.
    for (const re of this.globs) {
      for (let end = path.indexOf('/'); ; end = path.indexOf('/', end + 1)) {
        if (re.test(end === -1 ? path : path.slice(0, end))) return true
        if (end === -1) break
      }
    }
    return false
  }
}

function hasGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern)
}

/** A glob as an anchored RegExp: `*` is `.*`, `?` is `.`, `[...]` a class (`[!...]` negated). */
function globRegExp(pattern: string): RegExp {
  let out = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === '*') out += '.*'
    else if (c === '?') out += '.'
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2)
      if (close === -1) {
        out += '\\['
        continue
      }
      let body = pattern.slice(i + 1, close)
      if (body.startsWith('!')) body = '^' + body.slice(1)
      out += '[' + body.replace(/[\\\]]/g, '\\$&') + ']'
      i = close
    } else out += c.replace(/[.+^${}()|\\\]]/g, '\\$&')
  }
  return new RegExp(`^${out}$`, 's')
}
