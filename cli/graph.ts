/**
 * The ASCII history graph of `left log --graph`, drawn as git draws it: one
 * column per line of history, `*` for the commit, `|` for lines passing by,
 * `\` where a merge's other parent starts a line (or its edge reaches an
 * existing line), and `/` where two lines reach the same commit and join.
 * Lines that join from further than the next column are drawn as joining
 * their neighbour: a simplification git avoids with extra rows. Pure: it
 * takes commits in log order (children before parents) and returns text.
 */

/** A commit as the graph needs it: its id and its parents' ids, in order. */
export interface GraphCommit {
  readonly id: string
  readonly parents: readonly string[]
}

/** The graph of one commit: rows drawn above its line, its own prefix, and rows drawn below. */
export interface GraphRows {
  /** Joins of lines that reach this commit, drawn before it. */
  readonly before: readonly string[]
  /** The prefix of the commit's own line, `*` in its column. */
  readonly commit: string
  /** The start of new lines for a merge's other parents, drawn after it. */
  readonly after: readonly string[]
  /** The prefix for the text lines that belong to this commit (a message, a file list). */
  readonly continuation: string
}

/** Draws the graph; each commit's rows, in the order given. */
export function drawGraph(commits: readonly GraphCommit[]): GraphRows[] {
  // Each column holds the id of the commit that line leads to next.
  const columns: string[] = []
  const out: GraphRows[] = []
  const row = (cells: readonly string[]): string => cells.join('').trimEnd()
  const lines = (): string[] => columns.map(() => '| ')
  for (const c of commits) {
    const before: string[] = []
    let at = columns.indexOf(c.id)
    if (at === -1) {
      columns.push(c.id)
      at = columns.length - 1
    }
    // Other lines that lead here join it, nearest first.
    for (let j = columns.indexOf(c.id, at + 1); j !== -1; j = columns.indexOf(c.id, at + 1)) {
      const cells = lines()
      for (let k = j; k < columns.length; k++) cells[k] = k === j ? '' : ' /'
      cells[j - 1] = '|/'
      before.push(row(cells))
      columns.splice(j, 1)
    }
    const commitCells = lines()
    commitCells[at] = '* '
    const commit = row(commitCells)
    const after: string[] = []
    const [first, ...others] = c.parents
    if (first === undefined) columns.splice(at, 1)
    else columns[at] = first
    let insertAt = at + 1
    for (const p of others) {
      const existing = columns.indexOf(p)
      if (existing !== -1) {
        // The parent already has a line: show the edge that reaches over to it.
        const cells = lines()
        if (existing > at) cells[at] = '|\\'
        else cells[existing] = '|/'
        after.push(row(cells))
        continue
      }
      // A new line opens beside the commit; the lines to its right move over.
      const cells: string[] = columns.map((_, k) => (k < insertAt ? '| ' : ' \\'))
      cells[insertAt - 1] = '|\\'
      after.push(row(cells))
      columns.splice(insertAt, 0, p)
      insertAt++
    }
    out.push({ before, commit, after, continuation: row(lines()) })
  }
  return out
}
