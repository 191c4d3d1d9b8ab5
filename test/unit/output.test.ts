import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { changeLine, printable, quotePath, transferText } from '../../cli/output.js'

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
    assert.equal(transferText(t), '3 files, 2.0 MiB of ~6.0 MiB')
    assert.equal(transferText(t, 2), '3 files, 2.0 MiB of ~6.0 MiB, 1.0 MiB/s, ETA 4 s')
    assert.equal(transferText({ files: 1, bytes: 1000, expectedBytes: 1000 }, 3), '1 files, 1000 B of ~1000 B, 333 B/s')
  })
})
