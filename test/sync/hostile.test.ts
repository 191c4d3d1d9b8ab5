import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { lstat, mkdir, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises'
import * as net from 'node:net'
import { join } from 'node:path'
import * as tls from 'node:tls'
import { deflateRawSync } from 'node:zlib'
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import type { LeftError } from '../../src/errors.js'
import { DAG_CBOR, RAW, cidOf, decodeCommit, encodeNode } from '../../src/object/index.js'
import type { DirEntry } from '../../src/object/index.js'
import { fsck } from '../../src/repo/maintenance.js'
import { type IntegrateResult, type Repo, storeOf } from '../../src/repo/repo.js'
import { FolderService } from '../../src/node/service.js'
import { Store } from '../../src/store/store.js'
import type { PeerAddress } from '../../src/sync/address.js'
import { MAX_RAW_OBJECT } from '../../src/sync/compress.js'
import { MISSING_BURST, MISSING_PER_SECOND } from '../../src/sync/serve.js'
import { fetchClosure } from '../../src/sync/fetch.js'
import { FrameDecoder, MAX_FRAME, encodeFrame } from '../../src/sync/frame.js'
import { MAX_WANT, type Message, PROTOCOL_VERSION, decodeMessage, encodeMessage } from '../../src/sync/messages.js'
import type { Session } from '../../src/sync/session.js'
import { type Listener, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS, connect } from '../../src/sync/tls.js'
import { applyChanges } from '../../src/worktree/materialize.js'
import { tempDir } from '../helpers/cli.js'
import { describeTree } from '../helpers/tree.js'
import {
  KEY, LogCapture, type ServedRepo, StoreSource, initRepo, assertStoreWhole, countObjects, fsckFrom, literal, pskClientOptions, pskServerOptions, repoWithCommit, serveRepo
} from './fixtures.js'

/** Session stall timeout for everything in this file, in ms: short, so the timeout cases are quick, yet roomy for an honest peer on a busy machine. */
const TIMEOUT_MS = 2000
const HOSTILE_HOST = '127.0.0.3'

const isCode = (code: string) => (err: unknown): boolean => (err as { code?: unknown }).code === code

function header(length: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(length, 0)
  return b
}

const rawCid = (text: string): CID => cidOf(RAW, Buffer.from(text))

/**
 * A malicious client speaking raw TLS with the folder's PSK: it can write any
 * bytes, and records what the real peer sends it.
 */
class HostilePeer {
  readonly received: Message[] = []
  readonly closed: Promise<void>
  private readonly decoder = new FrameDecoder()
  private readonly waiters: Array<{ t: string; resolve: (m: Message) => void }> = []

  /** How the listener names this connection in its log lines (read while the socket is open). */
  readonly label: string

  private constructor(readonly socket: tls.TLSSocket) {
    this.label = `${HOSTILE_HOST}:${socket.localPort}`
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
    socket.on('error', () => {}) // resets are what these tests provoke
    socket.on('data', (piece: Buffer) => {
      for (const frame of this.decoder.push(piece)) {
        const m = decodeMessage(frame)
        this.received.push(m)
        for (const w of this.waiters.filter((x) => x.t === m.t)) {
          this.waiters.splice(this.waiters.indexOf(w), 1)
          w.resolve(m)
        }
      }
    })
  }

  /** Completes the TLS handshake (from 127.0.0.3, so log lines are easy to attribute). */
  static async connect(address: PeerAddress, key = KEY): Promise<HostilePeer> {
    const tcp = net.connect({ host: address.host, port: address.port, localAddress: HOSTILE_HOST })
    await once(tcp, 'connect')
    const socket = tls.connect({ ...pskClientOptions(key), socket: tcp })
    await once(socket, 'secureConnect')
    return new HostilePeer(socket)
  }

  /** Writes raw bytes, framed or not. */
  write(bytes: Uint8Array): void {
    this.socket.write(bytes)
  }

  /** Sends any dag-cbor value as one well-formed frame. */
  send(value: unknown): void {
    this.write(encodeFrame(dagCbor.encode(value)))
  }

  hello(head: CID | null = null): void {
    this.write(encodeFrame(encodeMessage({ t: 'hello', v: PROTOCOL_VERSION, peer: 'mallory', head })))
  }

  /** Answers every `want` from `objects` (by CID string), `missing` for the rest. */
  serve(objects: ReadonlyMap<string, Uint8Array>): void {
    this.socket.on('data', () => {
      for (const m of this.received.splice(0)) {
        if (m.t !== 'want') continue
        for (const cid of m.cids) {
          const bytes = objects.get(cid.toString())
          this.write(encodeFrame(encodeMessage(bytes === undefined ? { t: 'missing', cid } : { t: 'block', cid, data: bytes, z: 0 })))
        }
      }
    })
  }

  /** Resolves with the first message of type `t` from the real peer. */
  next(t: string): Promise<Message> {
    const seen = this.received.find((m) => m.t === t)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve) => this.waiters.push({ t, resolve }))
  }
}

describe('sync/hostile: a malicious client against a real listener', { timeout: 120_000 }, () => {
  let served: ServedRepo
  let root: string
  let server: Repo
  let head: CID
  let total: number
  let listener: Listener
  let logs: LogCapture
  /** How the listener's fetches of announced heads ended, by peer id. */
  const fetches = new Map<string, Promise<unknown>>()
  let n = 0

  before(async () => {
    served = await serveRepo('left-hostile-', TIMEOUT_MS, (session) => {
      // What the peer network does: a peer announcing a head gets fetched from.
      const remote = session.remoteHead
      if (remote !== null) {
        const p = session.fetch(remote)
        p.catch(() => {})
        fetches.set(session.remotePeerId, p)
      }
    })
    ;({ root, server, head, total, listener, logs } = served)
  })

  after(() => served?.close())

  /** The listener's store is exactly as before: same objects, fsck clean. */
  async function assertStoreIntact(): Promise<void> {
    assert.equal(await countObjects(storeOf(server)), total)
    const report = await fsck(storeOf(server))
    assert.deepEqual([report.objects, report.missing, report.corrupt], [total, [], []])
  }

  /** An honest peer can still connect and fetch the whole head. */
  async function assertStillServes(): Promise<void> {
    const dir = join(root, `good-${n++}`)
    const store = await Store.open(dir, { create: true })
    try {
      const session = await connect({ address: listener.address, key: KEY, session: { store, peerId: 'good', timeoutMs: 10_000 } })
      try {
        assert.ok(session.remoteHead?.equals(head))
        await session.fetch(head)
      } finally {
        await session.close()
      }
      const report = await fsckFrom(store, head)
      assert.deepEqual([report.objects, report.missing.length, report.corrupt.length], [total, 0, 0])
    } finally {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    }
  }

  interface Case {
    readonly name: string
    /** Misbehave; the hello (if any) is up to the case. */
    readonly act: (peer: HostilePeer) => void | Promise<void>
    /** What the listener's log line about this connection must say. */
    readonly line: RegExp
  }

  const cases: Case[] = [
    {
      name: 'an oversized frame header, before any hello',
      act: (p) => p.write(header(MAX_FRAME + 1)),
      line: /LEFT_PROTOCOL: frame of 16777217 bytes exceeds/
    },
    {
      name: 'a truncated frame, then hangup',
      act: (p) => {
        p.hello()
        p.write(Buffer.concat([header(100), Buffer.alloc(10, 1)]))
        p.socket.end()
      },
      line: /LEFT_PROTOCOL: stream ended inside a frame \(10 of 100 bytes\)/
    },
    {
      name: 'garbage bytes (an HTTP request) after the hello',
      act: (p) => {
        p.hello()
        p.write(Buffer.from('GET / HTTP/1.1\r\nHost: peer\r\n\r\n'))
      },
      line: /LEFT_PROTOCOL: frame of \d+ bytes exceeds/
    },
    {
      name: 'a well-formed frame holding invalid CBOR',
      act: (p) => {
        p.hello()
        p.write(encodeFrame(Buffer.from([0xff, 0xfe, 0xfd])))
      },
      line: /LEFT_PROTOCOL: message is not valid dag-cbor/
    },
    {
      name: 'an unknown message type',
      act: (p) => {
        p.hello()
        p.send({ t: 'gimme', path: '/etc/passwd' })
      },
      line: /LEFT_PROTOCOL: unknown message type "gimme"/
    },
    {
      name: 'a block that was never requested',
      act: (p) => {
        p.hello()
        const data = Buffer.from('unasked')
        p.write(encodeFrame(encodeMessage({ t: 'block', cid: cidOf(RAW, data), data, z: 0 })))
      },
      line: /LEFT_PROTOCOL: peer sent an unrequested block/
    },
    {
      name: 'a missing answer that was never requested',
      act: (p) => {
        p.hello()
        p.write(encodeFrame(encodeMessage({ t: 'missing', cid: rawCid('?') })))
      },
      line: /LEFT_PROTOCOL: peer sent an unrequested missing/
    },
    {
      name: 'a want list over MAX_WANT',
      act: (p) => {
        p.hello()
        p.send({ t: 'want', cids: Array.from({ length: MAX_WANT + 1 }, (_, i) => rawCid(`w${i}`)) })
      },
      line: /LEFT_PROTOCOL: want\.cids must list 1 to 256 CIDs/
    },
    {
      name: 'more wants than the server queues, sent without reading the answers',
      act: (p) => {
        p.hello()
        const frames = Array.from({ length: 40 }, (_, k) =>
          encodeFrame(encodeMessage({ t: 'want', cids: Array.from({ length: MAX_WANT }, (_, i) => rawCid(`q${k}/${i}`)) })))
        p.write(Buffer.concat(frames))
      },
      line: /LEFT_PROTOCOL: peer has more than 1024 wants outstanding/
    },
    {
      name: 'a second hello',
      act: (p) => {
        p.hello()
        p.hello()
      },
      line: /LEFT_PROTOCOL: second hello/
    },
    {
      name: 'a want before the hello',
      act: (p) => p.write(encodeFrame(encodeMessage({ t: 'want', cids: [head] }))),
      line: /LEFT_PROTOCOL: expected hello, got want/
    },
    {
      name: 'a hello from a future protocol version',
      act: (p) => p.send({ t: 'hello', v: PROTOCOL_VERSION + 1, peer: 'mallory', head: null, caps: ['x'] }),
      line: new RegExp(`LEFT_PROTOCOL: peer speaks protocol version ${PROTOCOL_VERSION + 1}`)
    },
    {
      name: 'a peer that completes the hello, then stalls while we wait on it',
      act: async (p) => {
        // It announces a head, so the listener asks for it, and then never answers.
        const bait = encodeNode({ type: 'commit', tree: cidOf(DAG_CBOR, Buffer.from('no tree')), parents: [], generation: 1, author: 'mallory', time: 1, message: 'bait' })
        p.hello(bait.cid)
        const want = await p.next('want')
        assert.ok(want.t === 'want' && want.cids.some((c) => c.equals(bait.cid)))
        await assert.rejects(fetches.get('mallory')!, isCode('LEFT_TIMEOUT'))
        assert.ok(!(await storeOf(server).has(bait.cid)))
        assert.equal(await storeOf(server).getStaged(bait.cid), undefined)
      },
      line: new RegExp(`LEFT_TIMEOUT: timed out: .* sent no objects for ${TIMEOUT_MS} ms`)
    },
    {
      name: 'a peer that starts a big frame and never finishes it (it would hold the buffer forever)',
      act: (p) => {
        p.hello()
        p.write(Buffer.concat([header(MAX_FRAME), Buffer.alloc(64 * 1024, 7)]))
      },
      line: new RegExp(`LEFT_TIMEOUT: timed out: .* left a frame unfinished for ${TIMEOUT_MS} ms`)
    },
    {
      name: 'a peer that never sends its hello',
      act: () => {},
      line: new RegExp(`LEFT_TIMEOUT: timed out: .* sent no hello for ${TIMEOUT_MS} ms`)
    }
  ]

  for (const c of cases) {
    it(`ends only the connection of ${c.name}, logs it, and keeps serving`, { timeout: 15_000 }, async () => {
      const peer = await HostilePeer.connect(listener.address)
      try {
        // The listener always speaks first; its hello shows the session is up.
        const hello = await peer.next('hello')
        assert.ok(hello.t === 'hello' && hello.head?.equals(head))
        await c.act(peer)
        await peer.closed
        const line = await logs.waitFor(new RegExp(`${literal(peer.label)}.*${c.line.source}`))
        assert.match(line, /^session with /)
      } finally {
        peer.socket.destroy()
      }
      await assertStoreIntact()
      await assertStillServes()
    })
  }

  for (const [name, act] of [
    ['a TCP client that sends plain-text garbage instead of TLS', (s: net.Socket) => s.write('GET / HTTP/1.1\r\n\r\n')],
    ['a TCP client that never starts the TLS handshake', () => {}]
  ] as const) {
    it(`drops ${name}, logs it, and keeps serving`, { timeout: 15_000 }, async () => {
      const socket = net.connect({ host: listener.address.host, port: listener.address.port, localAddress: HOSTILE_HOST })
      socket.on('error', () => {})
      try {
        await once(socket, 'connect')
        const label = `${HOSTILE_HOST}:${socket.localPort}`
        act(socket)
        await once(socket, 'close')
        await logs.waitFor(new RegExp(`^TLS handshake with ${literal(label)} failed: `))
      } finally {
        socket.destroy()
      }
      await assertStoreIntact()
      await assertStillServes()
    })
  }

  it('keeps a slot for honest peers while one host holds idle connections, and frees those at the handshake deadline', { timeout: 15_000 }, async () => {
    // MAX_CONNECTIONS idle TCP connections from one host: without a cap per
    // address they would fill every slot, and lock peers out until cut.
    const logStart = logs.lines.length
    const sockets = Array.from({ length: MAX_CONNECTIONS }, () => {
      const s = net.connect({ host: listener.address.host, port: listener.address.port, localAddress: HOSTILE_HOST })
      s.on('error', () => {})
      return s
    })
    const closed = sockets.map((s) => once(s, 'close'))
    try {
      await Promise.all(sockets.map((s, i) => Promise.race([once(s, 'connect'), closed[i]])))
      // While the host's idle connections are open, a peer on another address gets in and syncs.
      await assertStillServes()
      await Promise.all(closed)
    } finally {
      for (const s of sockets) s.destroy()
    }
    const lines = logs.lines.slice(logStart)
    const timedOut = lines.filter((l) => /^TLS handshake with 127\.0\.0\.3:\d+ failed: ERR_TLS_HANDSHAKE_TIMEOUT$/.test(l)).length
    assert.ok(timedOut >= 1 && timedOut <= MAX_CONNECTIONS_PER_ADDRESS, `handshake timeouts: ${timedOut}`)
    assert.ok(lines.some((l) => l === `refused connections from 127.0.0.3: it already has ${MAX_CONNECTIONS_PER_ADDRESS} open`))
    await assertStillServes()
  })
})

/** A running node under attack: its repo, its log, and a hostile peer connected to it. */
interface NodeUnderAttack {
  readonly repo: Repo
  readonly logs: LogCapture
  readonly peer: HostilePeer
}

/**
 * Makes a repo, lets `prepare` fill it, starts a real node on it (listening
 * on loopback), connects a hostile peer, runs `attack`, then stops and
 * removes everything.
 */
async function againstNode<T>(prefix: string, prepare: (repo: Repo) => Promise<T>, attack: (node: NodeUnderAttack, prepared: T) => Promise<void>): Promise<void> {
  const { dir: root, cleanup } = await tempDir(prefix)
  const repo = await initRepo(join(root, 'node'))
  const logs = new LogCapture()
  let service: FolderService | undefined
  let peer: HostilePeer | undefined
  try {
    const prepared = await prepare(repo)
    service = await FolderService.start({ repo, listen: { host: '127.0.0.1', port: 0 }, log: logs.log, timeoutMs: TIMEOUT_MS })
    peer = await HostilePeer.connect(service.listenAddress!)
    await attack({ repo, logs, peer }, prepared)
  } finally {
    peer?.socket.destroy()
    await service?.stop()
    await repo.close()
    await cleanup()
  }
}

describe('sync/hostile: a head storm against a running node (issue 8 item 11)', { timeout: 120_000 }, () => {
  it('answers 9,000 announcements of an old head from its history index, without committing or walking history', () => againstNode('left-storm-', async (repo) => {
    await writeFile(join(repo.share, 'a.txt'), 'one')
    const old = (await repo.commit('one'))!.cid
    await writeFile(join(repo.share, 'a.txt'), 'two')
    const head = (await repo.commit('two'))!.cid
    // Left uncommitted on purpose: integrating any head commits local
    // changes first, so a handled announcement would show as a new commit.
    await writeFile(join(repo.share, 'local.txt'), 'not committed yet')
    return { old, head }
  }, async ({ repo, peer }, { old, head }) => {
    peer.hello(null)
    await peer.next('hello')
    const storm = encodeFrame(encodeMessage({ t: 'head', cid: old }))
    peer.write(Buffer.concat(Array.from({ length: 9_000 }, () => storm)))
    // Then a head the node lacks: it asks for it only after every earlier
    // announcement was handled, one at a time.
    const unknown = encodeNode({ type: 'commit', tree: encodeNode({ type: 'dir', entries: [] }).cid, parents: [head], generation: 3, author: 'mallory', time: Date.now(), message: 'new' })
    peer.write(encodeFrame(encodeMessage({ t: 'head', cid: unknown.cid })))
    const want = await peer.next('want')
    assert.ok(want.t === 'want' && want.cids.some((c) => c.equals(unknown.cid)))
    assert.equal((await repo.head())?.toString(), head.toString(), 'no announcement of the old head was integrated')
    assert.ok(!peer.socket.destroyed, 'an old head is no offence: the peer is only behind')
  }))
})

describe('sync/hostile: work per peer is rate-limited (issue 8)', { timeout: 120_000 }, () => {
  it('takes new heads from one peer at most 10 at once and 2 a second after, and still ends at its latest', () => againstNode('left-heads-', async (repo) => {
    await writeFile(join(repo.share, 'a.txt'), 'one')
    let parent = (await repo.commit('one'))!.cid
    const tree = decodeCommit((await storeOf(repo).get(parent))!).tree
    // 60 commits, each a fast-forward of the one before: cheap to take, so
    // without a limit the node takes nearly every one.
    const objects = new Map<string, Uint8Array>()
    const chain: CID[] = []
    for (let i = 0; i < 60; i++) {
      const c = encodeNode({ type: 'commit', tree, parents: [parent], generation: i + 2, author: 'mallory', time: 1_700_000_000_000 + i, message: `new ${i}` })
      objects.set(c.cid.toString(), c.bytes)
      chain.push(c.cid)
      parent = c.cid
    }
    return { objects, chain, reflogBefore: (await storeOf(repo).listRefs('reflog/')).length }
  }, async ({ repo, logs, peer }, { objects, chain, reflogBefore }) => {
    peer.serve(objects)
    peer.hello(null)
    const start = Date.now()
    const throttled = (): boolean => logs.lines.some((l) => /announces new heads faster than 2 a second/.test(l))
    for (const cid of chain) {
      peer.write(encodeFrame(encodeMessage({ t: 'head', cid })))
      // Until the limit bites, each head is taken before the next comes, so
      // the node takes them as fast as it can whatever the machine's speed
      // (announcements that come while it is busy are coalesced, and could
      // keep a slow machine under the limit); after, they come at once.
      for (const wait = Date.now() + 10_000; !throttled() && !((await repo.head())?.equals(cid) ?? false) && Date.now() < wait;) await sleep(5)
      if (throttled()) await sleep(10)
    }
    const latest = chain[chain.length - 1]!
    while (!((await repo.head())?.equals(latest) ?? false)) {
      assert.ok(Date.now() - start < 30_000, 'the node never took the latest head')
      await sleep(20)
    }
    const elapsed = Date.now() - start
    const moves = (await storeOf(repo).listRefs('reflog/')).length - reflogBefore
    // An upper bound that only grows on a slow machine: never a speed assertion.
    assert.ok(moves <= 10 + 2 * (elapsed / 1000) + 1, `${moves} heads taken in ${elapsed} ms`)
    assert.ok(moves < chain.length, 'later heads were coalesced')
    assert.equal(logs.lines.filter((l) => /announces new heads faster than 2 a second/.test(l)).length, 1, 'said once')
  }))

  it(`answers a peer asking for objects it lacks with at most ${MISSING_BURST} missing at once and ${MISSING_PER_SECOND} a second after`, () => againstNode('left-missing-', async () => {}, async ({ peer }) => {
    peer.hello(null)
    await peer.next('hello')
    const asked = 3 * MISSING_BURST
    const start = Date.now()
    for (let i = 0; i < asked; i += MAX_WANT) {
      const cids = Array.from({ length: Math.min(MAX_WANT, asked - i) }, (_, j) => rawCid(`absent ${i + j}`))
      peer.write(encodeFrame(encodeMessage({ t: 'want', cids })))
      // Stay within the serve queue: wait for this batch's answers.
      while (peer.received.filter((m) => m.t === 'missing').length < i + cids.length) {
        assert.ok(!peer.socket.destroyed, 'the node hung up')
        await sleep(5)
      }
    }
    const elapsed = Date.now() - start
    // A lower bound: the answers past the burst cannot come faster than the rate.
    const floor = ((asked - MISSING_BURST) / MISSING_PER_SECOND) * 1000
    assert.ok(elapsed >= floor * 0.9, `${asked} missing answers came in ${elapsed} ms, faster than the limit allows (${floor} ms)`)
    assert.ok(!peer.socket.destroyed, 'asking is no offence: the peer is slowed, not dropped')
  }))
})

/** Something a hostile server answers to one wanted CID (undefined: say nothing). */
type Answer = (cid: CID, bytes: Uint8Array | undefined) => Message | undefined

/** A malicious server with the folder's PSK; `onConnection` does the talking. */
async function hostileServer(onConnection: (socket: tls.TLSSocket) => void): Promise<{ address: PeerAddress; close: () => Promise<void> }> {
  const sockets = new Set<tls.TLSSocket>()
  const server = tls.createServer(pskServerOptions(KEY), (socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    onConnection(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    address: { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port },
    close: () => {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    }
  }
}

/** Speaks the protocol from `blocks`, announcing `head`, answering each want through `answer`. */
function serveBlocks(head: CID, blocks: ReadonlyMap<string, Uint8Array>, answer: Answer) {
  return (socket: tls.TLSSocket): void => {
    const decoder = new FrameDecoder()
    socket.write(encodeFrame(encodeMessage({ t: 'hello', v: PROTOCOL_VERSION, peer: 'mallory', head })))
    socket.on('data', (piece: Buffer) => {
      for (const frame of decoder.push(piece)) {
        const m = decodeMessage(frame)
        if (m.t === 'bye') socket.end()
        if (m.t !== 'want') continue
        for (const cid of m.cids) {
          const reply = answer(cid, blocks.get(cid.toString()))
          if (reply !== undefined) socket.write(encodeFrame(encodeMessage(reply)))
        }
      }
    })
  }
}

const honest: Answer = (cid, bytes) => (bytes === undefined ? { t: 'missing', cid } : { t: 'block', cid, data: bytes, z: 0 })

async function blocksOf(store: Store): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>()
  for await (const cid of store.objectCids()) out.set(cid.toString(), (await store.get(cid))!)
  return out
}

/** A commit whose root directory has one entry named `name` (validity unchecked) holding `escaped.txt`. */
function escapingTree(name: string): { head: CID; blocks: Map<string, Uint8Array>; evil: CID } {
  const content = Buffer.from('written outside the share folder\n')
  const chunk = cidOf(RAW, content)
  const inner = encodeNode({ type: 'dir', entries: [{ name: 'escaped.txt', kind: 'file', cid: chunk, size: content.length, mtime: 1_700_000_000_000, exec: false }] })
  const rootBytes = dagCbor.encode({ type: 'dir', entries: [{ name, kind: 'dir', cid: inner.cid, size: 0, mtime: 0, exec: false }] })
  const evil = cidOf(DAG_CBOR, rootBytes)
  const commit = encodeNode({ type: 'commit', tree: evil, parents: [], generation: 1, author: 'mallory', time: 1_700_000_000_000, message: 'escape' })
  const blocks = new Map<string, Uint8Array>([
    [chunk.toString(), content], [inner.cid.toString(), inner.bytes], [evil.toString(), rootBytes], [commit.cid.toString(), commit.bytes]
  ])
  return { head: commit.cid, blocks, evil }
}

describe('sync/hostile: a malicious server that our connect() talks to', { timeout: 120_000 }, () => {
  let root: string
  let cleanup: () => Promise<void>
  let source: Repo
  let head: CID
  let blocks: Map<string, Uint8Array>
  let n = 0

  before(async () => {
    ;({ dir: root, cleanup } = await tempDir('left-evil-server-'))
    ;({ repo: source, head } = await repoWithCommit(join(root, 'source'), 'evil-server'))
    blocks = await blocksOf(storeOf(source))
  })

  after(async () => {
    await source?.close()
    await cleanup()
  })

  /** Runs `fn` with a fresh store and a server; closes both whatever happens. */
  async function against(serve: (socket: tls.TLSSocket) => void, fn: (store: Store, address: PeerAddress) => Promise<void>): Promise<void> {
    const dir = join(root, `client-${n++}`)
    const store = await Store.open(dir, { create: true })
    const server = await hostileServer(serve)
    try {
      await fn(store, server.address)
    } finally {
      await server.close()
      await store.close()
    }
  }

  const dial = (store: Store, address: PeerAddress): Promise<Session> =>
    connect({ address, key: KEY, session: { store, peerId: 'victim', timeoutMs: TIMEOUT_MS } })

  it('rejects blocks that do not match their CID (HashMismatchError), ends the session and stores nothing wrong', async () => {
    const chunks = [...blocks.keys()].filter((k) => k.startsWith('bafk')).sort()
    for (const victim of [head.toString(), chunks[0]!]) {
      const tampered: Answer = (cid, bytes) => {
        if (cid.toString() !== victim) return honest(cid, bytes)
        const wrong = Buffer.from(bytes!)
        wrong[0] = wrong[0]! ^ 0x80
        return { t: 'block', cid, data: wrong, z: 0 }
      }
      await against(serveBlocks(head, blocks, tampered), async (store, address) => {
        const session = await dial(store, address)
        await assert.rejects(session.fetch(head), (err: LeftError) => err.code === 'LEFT_HASH_MISMATCH' && err.message.includes(victim))
        assert.ok(session.isClosed, 'a peer that sent a wrong object is dropped')
        // A wrong chunk comes after the history: the head is in, but thin.
        if (victim.startsWith('bafk')) assert.ok((await store.thinCommits()).has(head.toString()))
        else assert.ok(!(await store.has(head)))
        assert.ok(![...(await blocksOf(store)).keys()].includes(victim))
        await assertStoreWhole(store)
      })
    }
  })

  it('rejects an inflate bomb in place of a chunk (ProtocolError)', async () => {
    const bomb = deflateRawSync(Buffer.alloc(MAX_RAW_OBJECT * 4), { level: 9 })
    const bombing: Answer = (cid, bytes) => (cid.code === RAW ? { t: 'block', cid, data: bomb, z: 1 } : honest(cid, bytes))
    await against(serveBlocks(head, blocks, bombing), async (store, address) => {
      const session = await dial(store, address)
      await assert.rejects(session.fetch(head), (err: LeftError) => err.code === 'LEFT_PROTOCOL' && /does not inflate within 1048576 bytes/.test(err.message))
      assert.ok(session.isClosed)
      assert.equal([...(await blocksOf(store)).keys()].filter((k) => k.startsWith('bafk')).length, 0)
      await assertStoreWhole(store)
    })
  })

  it('rejects a tree whose entry is named ".." or contains "/" (ProtocolError) and stores none of it', async () => {
    for (const name of ['..', 'a/b', '../outside']) {
      const evil = escapingTree(name)
      await against(serveBlocks(evil.head, evil.blocks, honest), async (store, address) => {
        const session = await dial(store, address)
        assert.ok(session.remoteHead?.equals(evil.head))
        await assert.rejects(session.fetch(evil.head), (err: LeftError) => err.code === 'LEFT_PROTOCOL' && err.message.includes('invalid entry name'), name)
        assert.ok(session.isClosed)
        assert.equal(await countObjects(store), 0, name)
        assert.equal(await store.getStaged(evil.evil), undefined)
      })
    }
  })

  it('writes nothing outside the share folder when a peer network meets such a tree', async () => {
    const evil = escapingTree('..')
    const server = await hostileServer(serveBlocks(evil.head, evil.blocks, honest))
    const base = join(root, 'victim-base')
    await mkdir(base)
    const repo = await initRepo(join(base, 'folder'))
    const logs = new LogCapture()
    let service: FolderService | undefined
    try {
      service = await FolderService.start({ repo, peers: [server.address], log: logs.log, timeoutMs: TIMEOUT_MS, minRetryMs: 60_000, maxRetryMs: 60_000 })
      await logs.waitFor(/^peer mallory: peer sent an invalid object .*invalid entry name "\.\."/)
    } finally {
      await service?.stop()
      await server.close()
      await repo.close()
    }
    assert.deepEqual(await readdir(base), ['folder'])
    assert.deepEqual((await readdir(join(base, 'folder'))).sort(), ['.left', 'share'])
    assert.deepEqual(await readdir(join(base, 'folder', 'share')), [])
    await assert.rejects(stat(join(base, 'escaped.txt')), isCode('ENOENT'))
  })

  it('tells left sync why a session ended: a protocol violation, not a hang-up', async () => {
    const evil = escapingTree('..')
    const server = await hostileServer(serveBlocks(evil.head, evil.blocks, honest))
    const repo = await initRepo(join(root, `sync-victim-${n++}`))
    let service: FolderService | undefined
    try {
      service = await FolderService.start({ repo, log: () => {}, timeoutMs: TIMEOUT_MS })
      const session = await service.connectOnce(server.address)
      await assert.rejects(service.network.waitInSync(session), (err: LeftError) => err.code === 'LEFT_PROTOCOL' && /invalid entry name/.test(err.message))
    } finally {
      await service?.stop()
      await server.close()
      await repo.close()
    }
  })

  it('times out a server that never sends its hello', async () => {
    await against(() => {}, async (store, address) => {
      await assert.rejects(dial(store, address), (err: LeftError) => err.code === 'LEFT_TIMEOUT' && /sent no hello/.test(err.message))
    })
  })

  it('refuses a hello whose head is not a commit CID', async () => {
    const serve = (socket: tls.TLSSocket): void => {
      socket.write(encodeFrame(dagCbor.encode({ t: 'hello', v: PROTOCOL_VERSION, peer: 'mallory', head: rawCid('not a commit') })))
    }
    await against(serve, async (store, address) => {
      await assert.rejects(dial(store, address), (err: LeftError) => err.code === 'LEFT_PROTOCOL' && /hello\.head must be a dag-cbor CID/.test(err.message))
    })
  })
})

describe('worktree/materialize: links that arrive from a peer', { timeout: 120_000 }, () => {
  let root: string
  let cleanup: () => Promise<void>
  const repos: Repo[] = []

  before(async () => {
    ;({ dir: root, cleanup } = await tempDir('left-links-'))
  })

  after(async () => {
    for (const r of repos) await r.close()
    await cleanup()
  })

  /** A source and a destination folder side by side under `root/name`, and an empty `root/name/outside`. */
  async function pair(name: string): Promise<{ source: Repo; dest: Repo; outside: string }> {
    const base = join(root, name)
    const outside = join(base, 'outside')
    await mkdir(outside, { recursive: true })
    const source = await initRepo(join(base, 'source'))
    repos.push(source)
    const dest = await initRepo(join(base, 'dest'))
    repos.push(dest)
    return { source, dest, outside }
  }

  /** Commits the source share as it is now, and brings that commit into `dest` the way sync does. */
  async function sync(source: Repo, dest: Repo): Promise<IntegrateResult> {
    const made = await source.commit()
    assert.ok(made !== undefined)
    await fetchClosure(made.cid, storeOf(dest), new StoreSource(storeOf(source)))
    return dest.integrate(made.cid)
  }

  it('creates a link to /etc as a link, and a directory that replaces a link to outside the share is made inside it', async () => {
    const { source, dest, outside } = await pair('replace')
    await writeFile(join(source.share, 'ok.txt'), 'ok\n')
    await symlink('/etc', join(source.share, 'etc-link'))
    // From dest/share/d, ../../outside is the outside dir beside dest/.
    await symlink('../../outside', join(source.share, 'd'))
    let result = await sync(source, dest)
    assert.equal(result.mode, 'fast-forward')
    assert.ok((await lstat(join(dest.share, 'etc-link'))).isSymbolicLink())
    assert.equal(await readlink(join(dest.share, 'etc-link')), '/etc')
    assert.ok((await lstat(join(dest.share, 'd'))).isSymbolicLink())
    assert.equal(await readlink(join(dest.share, 'd')), '../../outside')
    assert.deepEqual(await dest.status(), [])

    // The next commit turns d into a real directory with a file in it.
    await rm(join(source.share, 'd'))
    await mkdir(join(source.share, 'd'))
    await writeFile(join(source.share, 'd', 'x'), 'inside\n')
    result = await sync(source, dest)
    assert.deepEqual([result.mode, result.skipped], ['fast-forward', []])
    assert.ok((await lstat(join(dest.share, 'd'))).isDirectory())
    assert.equal(await readFile(join(dest.share, 'd', 'x'), 'utf8'), 'inside\n')
    assert.deepEqual(await readdir(outside), [], 'nothing was written through the old link')
    assert.deepEqual(await dest.status(), [])
    const report = await fsck(storeOf(dest))
    assert.deepEqual([report.missing, report.corrupt], [[], []])
  })

  it('does not write through a local link that sits where an incoming directory goes', async () => {
    const { source, dest, outside } = await pair('local-link')
    await writeFile(join(source.share, 'base.txt'), 'base\n')
    await sync(source, dest)
    // dest/share/e is a link made locally (never committed) to outside the share.
    await symlink(outside, join(dest.share, 'e'))
    await mkdir(join(source.share, 'e'))
    await writeFile(join(source.share, 'e', 'payload'), 'from the peer\n')
    const result = await sync(source, dest)
    assert.equal(result.mode, 'merge', 'the local link was committed first, so the histories diverged')
    assert.deepEqual(await readdir(outside), [], 'nothing was written through the link')
    // Both sides survive inside the share: the peer's directory and the local link (or its conflict copy).
    const tree = await describeTree(dest.share)
    assert.ok(tree.some((p) => p.type === 'link' && p.target === outside), JSON.stringify(tree))
    assert.ok(tree.some((p) => p.type === 'file' && p.path.endsWith('/payload')), JSON.stringify(tree))
  })

  it('never deletes through a link that replaced a tracked directory', async () => {
    // The share has a link d2 -> outside where the tree says d2 is a directory
    // with x and sub/y; outside holds files of the same names.
    const base = join(root, 'apply')
    const share = join(base, 'share')
    const tmp = join(base, 'tmp')
    const outside = join(base, 'outside')
    await mkdir(share, { recursive: true })
    await mkdir(tmp)
    await mkdir(join(outside, 'sub'), { recursive: true })
    await writeFile(join(outside, 'x'), 'precious\n')
    await writeFile(join(outside, 'sub', 'y'), 'precious too\n')
    await symlink(outside, join(share, 'd2'))
    const st = await stat(join(outside, 'x'))
    const fileEntry = (name: string, content: string, mtime: number): DirEntry =>
      ({ name, kind: 'file', cid: cidOf(RAW, Buffer.from(content)), size: Buffer.byteLength(content), mtime, exec: false })
    const dirEntry = (name: string): DirEntry => ({ name, kind: 'dir', cid: encodeNode({ type: 'dir', entries: [] }).cid, size: 0, mtime: 0, exec: false })
    const store = await Store.open(join(base, 'store'), { create: true })
    try {
      for (const guard of [false, true]) {
        const changes = [
          { path: 'd2', before: dirEntry('d2') },
          // Same size and mtime as the file outside: the guard alone cannot tell them apart.
          { path: 'd2/x', before: fileEntry('x', 'precious\n', Math.floor(st.mtimeMs)) },
          { path: 'd2/sub', before: dirEntry('sub') },
          { path: 'd2/sub/y', before: fileEntry('y', 'precious too\n', 0) }
        ]
        await applyChanges(changes, { share, tmp, src: store, guard })
        assert.equal(await readFile(join(outside, 'x'), 'utf8'), 'precious\n', `guard ${guard}`)
        assert.equal(await readFile(join(outside, 'sub', 'y'), 'utf8'), 'precious too\n', `guard ${guard}`)
        if (!guard) {
          await assert.rejects(lstat(join(share, 'd2')), isCode('ENOENT'), 'the link itself goes')
          await symlink(outside, join(share, 'd2'))
        }
      }
    } finally {
      await store.close()
    }
  })
})
