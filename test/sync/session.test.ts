import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { spawnSync } from 'node:child_process'
import { mkdir, readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { createServer as tlsCreateServer } from 'node:tls'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import type { LeftError } from '../../src/errors.js'
import type { Repo } from '../../src/repo/repo.js'
import { Store } from '../../src/store/store.js'
import type { PeerAddress } from '../../src/sync/address.js'
import type { Session } from '../../src/sync/session.js'
import { type Listener, connect, listen } from '../../src/sync/tls.js'
import { KEY, type LogCapture, type ServedRepo, assertStoreWhole, countObjects, fsckFrom, serveRepo } from './fixtures.js'

const isCode = (code: string) => (err: unknown): boolean => (err as { code?: unknown }).code === code

describe('sync/session over TLS on loopback', () => {
  let served: ServedRepo
  let root: string
  let server: Repo
  let head: CID
  let total: number
  let listener: Listener
  let logs: LogCapture
  let serverSessions: Session[]
  const stores: Store[] = []
  let n = 0

  async function freshStore(): Promise<Store> {
    const store = await Store.open(join(root, `client-${n++}`), { create: true })
    stores.push(store)
    return store
  }

  /** Connects with `key` and the given store as peer `peerId`; the session is closed by the caller. */
  function dial(store: Store, options: { key?: string; address?: PeerAddress; peerId?: string } = {}): Promise<Session> {
    return connect({
      address: options.address ?? listener.address,
      key: options.key ?? KEY,
      session: { store, peerId: options.peerId ?? 'client', timeoutMs: 10_000 }
    })
  }

  /** The server's half of the session whose peer calls itself `peerId`. */
  async function serverSide(peerId: string): Promise<Session> {
    for (;;) {
      const s = serverSessions.find((x) => x.remotePeerId === peerId)
      if (s !== undefined) return s
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  before(async () => {
    served = await serveRepo('left-session-', 10_000)
    ;({ root, server, head, total, listener, logs, sessions: serverSessions } = served)
  })

  after(async () => {
    for (const s of stores) await s.close().catch(() => {})
    await served?.close()
  })

  it('lets a peer holding the key exchange hellos and fetch the head commit', async () => {
    const store = await freshStore()
    const session = await dial(store, { peerId: 'fetcher' })
    try {
      assert.equal(session.remotePeerId, server.config.peerId)
      assert.ok(session.remoteHead?.equals(head))
      const result = await session.fetch(head)
      assert.equal(result.objects, total)
      const report = await fsckFrom(store, head)
      assert.deepEqual([report.objects, report.missing.length, report.corrupt.length], [total, 0, 0])
      const theirs = await serverSide('fetcher')
      assert.equal(theirs.stats.served, session.stats.received)
      assert.equal(session.stats.received, total)
      assert.equal(session.stats.wanted, total)
      // A second fetch of the same commit sends no want at all.
      const wants = session.stats.wants
      assert.equal((await session.fetch(head)).objects, 0)
      assert.equal(session.stats.wants, wants)
    } finally {
      await session.close()
    }
  })

  it('ends both halves in order when one side says bye', async () => {
    const store = await freshStore()
    const session = await dial(store, { peerId: 'polite' })
    const theirs = await serverSide('polite')
    const theirClose = once(theirs, 'close') as Promise<[LeftError | undefined]>
    await session.close()
    const [err] = await theirClose
    assert.equal(err, undefined)
    assert.ok(session.isClosed && theirs.isClosed)
    await assert.rejects(session.fetch(head), isCode('LEFT_SESSION_CLOSED'))
  })

  it('refuses a peer with another key (AuthError), logs it, and keeps serving', async () => {
    const store = await freshStore()
    const refusals = logs.lines.filter((l) => l.startsWith('refused')).length
    await assert.rejects(dial(store, { key: 'another-folder-key-0123456789' }), (err: LeftError) =>
      err.code === 'LEFT_AUTH' && err.message.includes(`127.0.0.1:${listener.address.port}`))
    const line = await logs.waitFor(/^refused 127\.0\.0\.1:\d+: it does not hold this folder's key$/)
    assert.ok(logs.lines.filter((l) => l.startsWith('refused')).length > refusals, line)
    assert.equal(await countObjects(store), 0)
    const session = await dial(store)
    try {
      await session.fetch(head)
      assert.equal(await assertStoreWhole(store), total)
    } finally {
      await session.close()
    }
  })

  it('refuses a server that authenticates with a certificate instead of the folder key (AuthError)', async (t) => {
    // A self-signed certificate made with the openssl command line.
    const certDir = join(root, `cert-${n++}`)
    await mkdir(certDir)
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { encoding: 'utf8' })
    if (made.error !== undefined) return t.skip('openssl is not installed')
    assert.equal(made.status, 0, made.stderr)
    const server = tlsCreateServer({
      key: await readFile(join(certDir, 'key.pem')), cert: await readFile(join(certDir, 'cert.pem')),
      minVersion: 'TLSv1.3'
    }, (socket) => socket.end())
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as { port: number }).port
    try {
      const store = await freshStore()
      await assert.rejects(dial(store, { address: { host: '127.0.0.1', port } }), (err: LeftError) =>
        err.code === 'LEFT_AUTH' && /presented a certificate instead of proving the folder key/.test(err.message))
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })

  it('reports PeerUnreachableError where nothing listens', async () => {
    // A port that was just free: bind it, note it, release it.
    const probe = createServer()
    probe.listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const port = (probe.address() as { port: number }).port
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const store = await freshStore()
    await assert.rejects(dial(store, { address: { host: '127.0.0.1', port } }), (err: LeftError) =>
      err.code === 'LEFT_PEER_UNREACHABLE' && err.message.includes(`127.0.0.1:${port}`) && /ECONNREFUSED/.test(err.message))
  })

  it('reports ListenError when the listen address is taken', async () => {
    const store = await freshStore()
    await assert.rejects(listen({
      address: listener.address,
      key: KEY,
      session: { store, peerId: 'second' },
      onSession: () => assert.fail('no session expected')
    }), isCode('LEFT_LISTEN'))
  })
})
