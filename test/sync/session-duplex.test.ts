import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { Duplex } from 'node:stream'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import type { LeftError } from '../../src/errors.js'
import { DAG_CBOR, RAW, cidOf } from '../../src/object/index.js'
import { Store } from '../../src/store/store.js'
import { FrameDecoder, encodeFrame } from '../../src/sync/frame.js'
import { type Message, PROTOCOL_VERSION, decodeMessage, encodeMessage } from '../../src/sync/messages.js'
import { type Session, openSession } from '../../src/sync/session.js'
import { tempDir } from '../helpers/cli.js'
import { seededBytes } from '../helpers/data.js'

/**
 * Two duplex streams joined in this process. A side whose reader does not
 * read holds back the other side's writes, as a socket whose peer stops
 * reading does, so backpressure is real.
 */
function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = []
  const pending: (() => void)[] = [() => {}, () => {}]
  const make = (i: number): Duplex => new Duplex({
    highWaterMark: 16 * 1024,
    read() {
      // Our reader wants more: let the other side's held write go on.
      const release = pending[i]!
      pending[i] = () => {}
      release()
    },
    write(chunk: Buffer, _enc, done) {
      const other = sides[1 - i]!
      if (other.push(chunk)) done()
      else pending[1 - i] = done
    },
    final(done) {
      sides[1 - i]!.push(null)
      done()
    },
    destroy(err, done) {
      const other = sides[1 - i]!
      if (!other.destroyed) other.destroy()
      done(err)
    }
  })
  sides.push(make(0), make(1))
  return [sides[0]!, sides[1]!]
}

/** The far end of a session, played by hand: sends messages, reads what the session sends. */
class RawPeer {
  readonly received: Message[] = []
  private readonly decoder = new FrameDecoder()

  constructor(readonly stream: Duplex, read = true) {
    if (read) stream.on('data', (chunk: Buffer) => this.take(chunk))
  }

  send(message: Message): void {
    this.stream.write(encodeFrame(encodeMessage(message)))
  }

  private take(chunk: Buffer): void {
    for (const frame of this.decoder.push(chunk)) {
      const m = decodeMessage(frame)
      this.received.push(m)
      // An orderly close: hang up in turn, as a peer does.
      if (m.t === 'bye') this.stream.end()
    }
  }

  count(t: Message['t']): number {
    return this.received.filter((m) => m.t === t).length
  }
}

/** Resolves with the error a session closed with. */
function closed(session: Session): Promise<LeftError | undefined> {
  return new Promise((resolve) => session.once('close', (err) => resolve(err)))
}

describe('sync/session over an in-process duplex', () => {
  let store: Store
  let cleanup: () => Promise<void>
  // The session's own timers are unref'd and an in-process pair holds no
  // handle, so keep the event loop alive while the tests wait on them.
  let alive: NodeJS.Timeout
  const big: CID[] = []
  /** Heads are commit CIDs (dag-cbor); the commits need not exist for these tests. */
  const head = cidOf(DAG_CBOR, seededBytes('their head', 10))
  const ourHead = cidOf(DAG_CBOR, seededBytes('our head', 10))

  before(async () => {
    alive = setInterval(() => {}, 1_000)
    const t = await tempDir('left-duplex-')
    cleanup = t.cleanup
    store = await Store.open(join(t.dir, 'store'), { create: true })
    // Incompressible 1 MiB objects, to fill any buffer between the two sides.
    const blocks = [0, 1, 2, 3].map((i) => {
      const bytes = seededBytes(`big-${i}`, 1024 * 1024)
      return { cid: cidOf(RAW, bytes), bytes }
    })
    await store.write({ blocks })
    big.push(...blocks.map((b) => b.cid))
  })
  after(async () => {
    clearInterval(alive)
    await store.close()
    await cleanup()
  })

  it('heartbeats its head while quiet, and ends a session whose peer with a head goes silent', async () => {
    const [ours, theirs] = duplexPair()
    const peer = new RawPeer(theirs)
    peer.send({ t: 'hello', v: PROTOCOL_VERSION, peer: 'silent', head })
    const session = await openSession(ours, { store, peerId: 'us', head: () => ourHead, heartbeatMs: 40, timeoutMs: 60_000 })
    const ended = await closed(session)
    assert.equal(ended?.code, 'LEFT_TIMEOUT')
    assert.match(ended.message, /\(silent\) sent nothing for \d+ ms/)
    // Hello, then a heartbeat each quiet interval until the limit (4 of them).
    assert.ok(peer.count('head') >= 2, `heartbeats seen: ${peer.count('head')}`)
    assert.ok(peer.received.filter((m) => m.t === 'head').every((m) => m.t === 'head' && m.cid.equals(ourHead)))
  })

  it('keeps a session whose peer heartbeats', async () => {
    const [ours, theirs] = duplexPair()
    const peer = new RawPeer(theirs)
    peer.send({ t: 'hello', v: PROTOCOL_VERSION, peer: 'lively', head })
    const session = await openSession(ours, { store, peerId: 'us', heartbeatMs: 40, timeoutMs: 60_000 })
    const beat = setInterval(() => peer.send({ t: 'head', cid: head }), 30)
    try {
      const answered = session.lastAnswer
      // Ten heartbeat intervals: more than twice the silence a session allows.
      await new Promise((r) => setTimeout(r, 400))
      assert.equal(session.isClosed, false)
      // Heard from, but it answered nothing: the swarm's hedge goes by lastAnswer (swarm.ts).
      assert.ok(session.lastSeen > answered + 200)
      assert.equal(session.lastAnswer, answered)
    } finally {
      clearInterval(beat)
      await session.close()
    }
  })

  it('keeps at most `window` objects wanted and unanswered', async () => {
    const [ours, theirs] = duplexPair()
    const peer = new RawPeer(theirs)
    peer.send({ t: 'hello', v: PROTOCOL_VERSION, peer: 'slow', head: null })
    const session = await openSession(ours, { store, peerId: 'us', window: 3, timeoutMs: 60_000 })
    const wanted = Array.from({ length: 10 }, (_, i) => cidOf(RAW, seededBytes(`absent-${i}`, 8)))
    const answers = wanted.map((cid) => session.request(cid).then(() => 'block', (err: LeftError) => err.code))
    const cidsAsked = (): number => peer.received.reduce((n, m) => n + (m.t === 'want' ? m.cids.length : 0), 0)
    await until(() => cidsAsked() === 3)
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(cidsAsked(), 3, 'no more than the window before an answer')
    // Each answer makes room for one more.
    const first = peer.received.find((m) => m.t === 'want')
    assert.ok(first?.t === 'want')
    peer.send({ t: 'missing', cid: first.cids[0]! })
    await until(() => cidsAsked() === 4)
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(cidsAsked(), 4)
    assert.equal(await answers[0], 'LEFT_MISSING_OBJECT')
    await session.close()
    assert.deepEqual(new Set(await Promise.all(answers.slice(1))), new Set(['LEFT_SESSION_CLOSED']))
  })

  it('ends a session whose peer asks for objects and stops reading', async () => {
    const [ours, theirs] = duplexPair()
    const streamClosed = once(ours, 'close')
    const peer = new RawPeer(theirs, false)
    // The hello must be read for the session to open; after it, nothing is.
    const decoder = new FrameDecoder()
    const helloRead = new Promise<void>((resolve) => {
      const onData = (chunk: Buffer): void => {
        if (decoder.push(chunk).length > 0) {
          theirs.off('data', onData)
          theirs.pause()
          resolve()
        }
      }
      theirs.on('data', onData)
    })
    peer.send({ t: 'hello', v: PROTOCOL_VERSION, peer: 'deaf', head: null })
    const session = await openSession(ours, { store, peerId: 'us', timeoutMs: 300 })
    await helloRead
    const ending = closed(session)
    peer.send({ t: 'want', cids: [...big, ...big] })
    const ended = await ending
    assert.equal(ended?.code, 'LEFT_TIMEOUT')
    assert.match(ended.message, /\(deaf\) stopped reading for 300 ms/)
    assert.ok(session.stats.served < 8, `served ${session.stats.served} of 8 to a peer that reads nothing`)
    // The session lets go of the stream too.
    await streamClosed
  })
})

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met within 10 s')
    await new Promise((r) => setTimeout(r, 5))
  }
}
