import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { changeLine, fitLine, printable, quotePath, transferText } from '../../cli/output.js'
import { Io } from '../../cli/io.js'
import { WorkLine } from '../../cli/progress.js'

describe('cli/output: names never reach a terminal raw', () => {
  it('escapes C0 and C1 controls, DEL and bidirectional overrides, and leaves other text alone', () => {
    assert.equal(printable('plain text, ünïcödé, 日本'), 'plain text, ünïcödé, 日本')
    assert.equal(printable('\x1b]0;owned\x07'), '\\e]0;owned\\x07')
    assert.equal(printable('a\nforged line\r'), 'a\\nforged line\\r')
    assert.equal(printable('tab\there\x7f\x9b'), 'tab\\there\\x7f\\x9b')
    assert.equal(printable('evil\u202Etxt.exe'), 'evil\\u{202e}txt.exe')
    assert.equal(printable('\u2066iso\u2069'), '\\u{2066}iso\\u{2069}')
  })

  it('quotes a path as git does only when it needs it', () => {
    assert.equal(quotePath('photos/2026/a b.jpg'), 'photos/2026/a b.jpg')
    assert.equal(quotePath('say "hi"'), '"say \\"hi\\""')
    assert.equal(quotePath('back\\slash'), '"back\\\\slash"')
    assert.equal(quotePath('new\nline'), '"new\\nline"')
    // Twice in a row: the shared pattern keeps no state between calls.
    assert.equal(quotePath('\x1b[2J'), '"\\e[2J"')
    assert.equal(quotePath('\x1b[2J'), '"\\e[2J"')
  })

  it('writes status and diff lines with quoted paths', () => {
    const entry = { kind: 'file', cid: undefined, size: 1, mtime: 0, exec: false } as never
    assert.equal(changeLine({ kind: 'added', path: 'x\x1b[31m', after: entry } as never), 'A "x\\e[31m"')
  })
})

describe('cli/output: transfers in words', () => {
  it('gives totals, then rate and time left once the elapsed time is known', () => {
    const t = { files: 3, bytes: 2 * 1024 * 1024, expectedBytes: 6 * 1024 * 1024 }
    assert.equal(transferText(t), '3 files (~6.0 MiB), 2.0 MiB received')
    assert.equal(transferText(t, 2), '3 files (~6.0 MiB), 2.0 MiB received, 1.0 MiB/s, ETA ~4 s')
    assert.equal(transferText({ files: 1, bytes: 1000, expectedBytes: 1000 }, 3), '1 file (~1000 B), 1000 B received, 333 B/s')
    // Node bytes can outrun the file sizes of a small change: never shown as "670 B of ~7 B".
    assert.equal(transferText({ files: 1, bytes: 670, expectedBytes: 7 }), '1 file (~7 B), 670 B received')
  })
})

describe('cli/output and cli/progress: progress lines fitted to the terminal (issue 10)', () => {
  it('drops whole parts from the end until the line fits, and cuts only a head too long alone', () => {
    const parts = ['3 files (~6.0 MiB)', '2.0 MiB received', '1.0 MiB/s', 'ETA ~4 s']
    assert.equal(fitLine('receiving from peer', parts, 200), 'receiving from peer: 3 files (~6.0 MiB), 2.0 MiB received, 1.0 MiB/s, ETA ~4 s')
    assert.equal(fitLine('receiving from peer', parts, 60), 'receiving from peer: 3 files (~6.0 MiB), 2.0 MiB received')
    assert.equal(fitLine('x'.repeat(50), parts, 30), 'x'.repeat(29))
  })

  /** An Io that records stderr, on a terminal `columns` wide (or not a terminal). */
  function terminal(tty: boolean, columns = 100): { io: Io; err: () => string } {
    let err = ''
    const io = new Io(() => {}, (t) => { err += t }, { stdoutIsTTY: tty, stderrIsTTY: tty, columns, debug: false })
    return { io, err: () => err }
  }

  it('draws a local operation on a terminal, with a total and an ETA once planned, and erases it', () => {
    const { io, err } = terminal(true)
    const line = new WorkLine(io, 'checking out', 'files', true)
    line.hooks.onPlan!(4, 4 << 20)
    line.hooks.onWrite!('a', 1 << 20)
    assert.match(err(), /^\r\x1b\[Kchecking out: 1 of 4 files, 1\.0 MiB of 4\.0 MiB, [\d.]+ \w+\/s, ETA ~\d+ s$/)
    line.warn('left: a warning')
    assert.ok(err().endsWith('\r\x1b[Kleft: a warning\n'), 'the line is erased before a warning')
    line.hooks.onWrite!('b', 1 << 20)
    line.clear()
    line.clear()
    assert.equal(err().split('\r\x1b[K').length, 3, 'drawn once, erased once; a redraw waits 250 ms, and a second clear does nothing')
  })

  it('draws content fetched from a peer before a checkout writes, as a transfer', () => {
    const { io, err } = terminal(true)
    const line = new WorkLine(io, 'checking out', 'files', true)
    line.fetching({ files: 2, bytes: 1 << 20, expectedBytes: 3 << 20 })
    assert.match(err(), /^\r\x1b\[Kfetching: 2 files \(~3\.0 MiB\), 1\.0 MiB received, [\d.]+ \w+\/s, ETA ~\d+ s$/)
    line.clear()
  })

  it('draws nothing off a terminal, or with -q', () => {
    for (const [tty, enabled] of [[false, true], [true, false]] as const) {
      const { io, err } = terminal(tty)
      const line = new WorkLine(io, 'committing', 'files', enabled)
      line.hooks.onHash!('a', 100)
      line.clear()
      assert.equal(err(), '')
    }
  })
})
