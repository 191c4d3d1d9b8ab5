import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ALL_PEERS, withPaused, withResumed } from '../../src/index.js'
import { LineDecoder, decodeClientLine, decodeServerLine, encodeLine } from '../../src/node/control-messages.js'
import { EventLog, LogLines, RECEIVED_LISTED, describeEvent } from '../../src/node/events.js'
import { isPausedPeer } from '../../src/node/pause.js'
import { Backoff } from '../../src/node/backoff.js'

describe('node/control-messages', () => {
  const run = { type: 'run', version: 1, argv: ['log', '-n', '1'], cwd: '/home/ann', terminal: { stdoutIsTTY: true, stderrIsTTY: false, columns: 80, debug: false } } as const

  it('splits lines across chunks and keeps several lines of one chunk', () => {
    const d = new LineDecoder(100)
    assert.deepEqual(d.push(Buffer.from('ab')), [])
    assert.deepEqual(d.push(Buffer.from('c\nde\nf')), ['abc', 'de'])
    assert.deepEqual(d.push(Buffer.from('\n')), ['f'])
    // A multi-byte character split between chunks survives.
    const euro = Buffer.from('€\n')
    assert.deepEqual(d.push(euro.subarray(0, 1)), [])
    assert.deepEqual(d.push(euro.subarray(1)), ['€'])
  })

  it('refuses a line longer than the limit before its newline arrives', () => {
    const d = new LineDecoder(10)
    d.push(Buffer.from('0123456789'))
    assert.throws(() => d.push(Buffer.from('x')), { code: 'LEFT_CONTROL' })
    assert.throws(() => new LineDecoder(10).push(Buffer.from('0123456789ab\n')), { code: 'LEFT_CONTROL' })
  })

  it('round-trips a run request and every daemon message', () => {
    assert.deepEqual(decodeClientLine(encodeLine(run).trimEnd()), run)
    for (const m of [
      { type: 'hello', version: 1, pid: 42, root: '/r' },
      { type: 'stdout', data: 'a\n' },
      { type: 'stderr', data: '' },
      { type: 'exit', code: 2 },
      { type: 'error', code: 'LEFT_CONTROL', message: 'no' }
    ] as const) assert.deepEqual(decodeServerLine(encodeLine(m).trimEnd()), m)
  })

  it('refuses malformed requests with LEFT_CONTROL', () => {
    const bad = (patch: Record<string, unknown>): string => JSON.stringify({ ...run, ...patch })
    for (const line of [
      'not json', '[]', 'null', '"run"',
      bad({ type: 'hello' }), bad({ version: 2 }), bad({ version: '1' }),
      bad({ argv: 'log' }), bad({ argv: [1] }), bad({ argv: new Array(4097).fill('x') }),
      bad({ cwd: 'relative' }), bad({ cwd: 7 }),
      bad({ terminal: null }), bad({ terminal: { stdoutIsTTY: 'yes', stderrIsTTY: false, debug: false } }),
      bad({ terminal: { ...run.terminal, columns: -1 } })
    ]) assert.throws(() => decodeClientLine(line), { code: 'LEFT_CONTROL' }, line.slice(0, 60))
    for (const line of ['{"type":"exit","code":256}', '{"type":"stdout"}', '{"type":"hello","version":1,"pid":"1","root":"/"}', '{"type":"other"}']) {
      assert.throws(() => decodeServerLine(line), { code: 'LEFT_CONTROL' }, line)
    }
  })
})

describe('node/events', () => {
  it('numbers events from 1, keeps the last ones, and replays those after an id', () => {
    const log = new EventLog(3)
    assert.equal(log.lastId, 0)
    for (let i = 0; i < 5; i++) log.emit({ type: 'notice', message: `n${i}` })
    assert.equal(log.lastId, 5)
    assert.deepEqual(log.since(0).map((e) => e.id), [3, 4, 5])
    assert.deepEqual(log.since(4).map((e) => e.id), [5])
    assert.deepEqual(log.since(5), [])
  })

  it('tells subscribers until they unsubscribe, and drops one that throws', () => {
    const log = new EventLog()
    const seen: number[] = []
    const stop = log.subscribe((e) => seen.push(e.id))
    log.subscribe(() => { throw new Error('bad listener') })
    log.emit({ type: 'peer-offline', peer: 'p' })
    stop()
    log.emit({ type: 'peer-offline', peer: 'p' })
    assert.deepEqual(seen, [1])
  })

  it('words events as the watch log always has, and leaves fetch progress out', () => {
    assert.equal(describeEvent({ type: 'peer-online', peer: 'ab', address: '127.0.0.2:1' }), 'peer ab online (127.0.0.2:1)')
    assert.equal(describeEvent({ type: 'head-moved', peer: 'ab', mode: 'merge', head: 'bafy' }), 'merged bafy from ab')
    assert.equal(describeEvent({ type: 'head-moved', peer: 'ab', mode: 'fast-forward', head: 'bafy' }), 'fast-forwarded to bafy from ab')
    assert.equal(describeEvent({ type: 'fetch-progress', peer: 'ab', files: 1, bytes: 2, expectedBytes: 3 }), undefined)
  })

  it("names the first files a change brings from each peer, and sums up the rest when that peer's head moves", () => {
    const lines = new LogLines()
    const receive = (peer: string, i: number): string[] => lines.lines({ type: 'file-received', peer, path: `f${i}`, size: 10 })
    const out: string[] = []
    for (let i = 0; i < RECEIVED_LISTED + 5; i++) out.push(...receive('a', i), ...receive('b', i))
    assert.equal(out.length, 2 * RECEIVED_LISTED)
    assert.equal(out.at(-1), `received f${RECEIVED_LISTED - 1} (10 bytes) from b`)
    assert.deepEqual(lines.lines({ type: 'head-moved', peer: 'a', mode: 'fast-forward', head: 'bafy' }), ['received 5 more files (50 bytes) from a', 'fast-forwarded to bafy from a'])
    // The next change from `a` starts the count again; `b`'s is still open until its fetch starts anew.
    assert.deepEqual(receive('a', 0), ['received f0 (10 bytes) from a'])
    assert.deepEqual(lines.lines({ type: 'fetch-started', peer: 'b', head: 'bafy' }), ['received 5 more files (50 bytes) from b'])
    assert.deepEqual(lines.lines({ type: 'head-moved', peer: 'a', mode: 'merge', head: 'bafy' }), ['merged bafy from a'])
    assert.deepEqual(lines.lines({ type: 'peer-offline', peer: 'b' }), ['peer b offline'])
  })
})

describe('node/pause', () => {
  it('pauses one peer or all, and resumes one or all', () => {
    let list = withPaused([], '10.0.0.2:24242')
    list = withPaused(list, 'ab12ab12ab12ab12')
    assert.deepEqual(withPaused(list, 'ab12ab12ab12ab12'), list, 'pausing twice changes nothing')
    assert.deepEqual(withResumed(list, '10.0.0.2:24242'), ['ab12ab12ab12ab12'])
    assert.deepEqual(withResumed(list, undefined), [])
    assert.deepEqual(withPaused([], undefined), [ALL_PEERS])
  })

  it('matches a peer by id, by address, by host alone, or by *', () => {
    assert.ok(isPausedPeer(['p1'], 'p1', []))
    assert.ok(isPausedPeer(['10.0.0.2:7'], undefined, ['10.0.0.2:7']))
    assert.ok(isPausedPeer(['10.0.0.2'], 'p1', ['10.0.0.2:7']))
    assert.ok(isPausedPeer(['[::1]'], 'p1', ['[::1]:7']))
    assert.ok(isPausedPeer([ALL_PEERS], undefined, []))
    assert.ok(!isPausedPeer(['10.0.0.2'], 'p1', ['10.0.0.20:7']))
    assert.ok(!isPausedPeer(['p2', '10.0.0.3:7'], 'p1', ['10.0.0.3:8']))
    assert.ok(!isPausedPeer([], 'p1', ['10.0.0.2:7']))
  })
})

describe('node/backoff', () => {
  it('doubles from min to max and starts over on reset', () => {
    const b = new Backoff(500, 4_000)
    assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [500, 1_000, 2_000, 4_000, 4_000])
    b.reset()
    assert.equal(b.next(), 500)
  })

  it('spreads each delay by the jitter around its nominal value', () => {
    const b = new Backoff(1_000, 8_000, 0.25)
    assert.equal(b.next(() => 0), 750)
    assert.equal(b.next(() => 1), 2_500)
    assert.equal(b.next(() => 0.5), 4_000)
  })
})
