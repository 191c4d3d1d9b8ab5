import { after, afterEach, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { chmod, mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { controlSocketPath } from '../../src/index.js'
import { type RunResult, assertOneLineError, left, leftOk } from '../helpers/cli.js'
import { type Peer, type PeerSet, DEADLINE_MS, killAll, logField, logIds, makePeers, sleep, spawnLeft, watch } from '../helpers/peers.js'

/** This file's port; each peer listens on its own loopback address. */
const PORT = 27613

const messages = (peer: Peer): Promise<string[]> => logField(peer, 'message')

/** `left status --json` of `peer`. */
async function statusJson(peer: Peer): Promise<{ synchronizer: null | { pid: number; peers: { id: string | null; online: boolean; sync: string }[] }; changes: unknown[] }> {
  return JSON.parse(await leftOk(peer.dir, ['status', '--json']))
}

/** Polls `check` until it returns true; fails at the deadline with `what`. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

/** Opens the control socket, lets `act` misbehave, and returns everything the daemon sent before closing. */
function rawClient(path: string, act: (socket: ReturnType<typeof connect>) => void): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(path)
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => { text += d })
    // A client cut off while still writing sees EPIPE; what it was sent is the answer.
    socket.on('error', () => {})
    socket.on('close', () => resolve(text))
    socket.on('connect', () => act(socket))
  })
}

/** The command lines compared with and without a running daemon; each leaves the folder as it found it. */
const SAME_OUTPUT: readonly (readonly string[])[] = [
  ['log'],
  ['log', '--json'],
  ['log', '-n', '1', 'HEAD~1'],
  ['log', 'nosuchrev'],
  ['diff', 'HEAD'],
  ['diff', 'HEAD~1', 'HEAD', '--json'],
  ['diff', 'HEAD~2'],
  ['commit', '-m', 'nothing changed'],
  ['commit', '--json'],
  ['restore', 'notes.txt', '--source', 'HEAD'],
  ['restore', 'no/such/path'],
  ['checkout', 'HEAD'],
  ['checkout', 'nosuchrev'],
  ['fsck'],
  ['fsck', '--json'],
  ['gc'],
  ['migrate'],
  ['key'],
  ['-C', 'share', 'log', '-n', '1']
]

describe('cli: commands beside a running daemon', () => {
  let set: PeerSet
  let A: Peer
  let B: Peer
  before(async () => {
    set = await makePeers(2, PORT)
    ;[A, B] = set.peers as [Peer, Peer]
    await writeFile(join(A.share, 'notes.txt'), 'one\n')
    await leftOk(A.dir, ['commit', '-m', 'first'])
    await mkdir(join(A.share, 'sub'))
    await writeFile(join(A.share, 'sub/b.bin'), 'two')
    await leftOk(A.dir, ['commit', '-m', 'second'])
    await writeFile(join(A.share, 'notes.txt'), 'one, edited\n')
    await leftOk(A.dir, ['commit', '-m', 'third'])
  })
  after(() => set.cleanup())
  afterEach(() => killAll())

  it('gives every command the same output and exit code with and without left watch running', async () => {
    // The one command whose answer depends on a daemon running.
    assertOneLineError(await left(A.dir, ['stop']), /no synchronizer is running/)
    const without: RunResult[] = []
    for (const args of SAME_OUTPUT) without.push(await left(A.dir, args))
    // Nothing above moved HEAD or touched the folder, so the daemon starts from the same state.
    const daemon = await watch(A, ['--listen', A.address])
    for (const [i, args] of SAME_OUTPUT.entries()) {
      const withDaemon = await left(A.dir, args)
      const expected = without[i]!
      assert.deepEqual(withDaemon, expected, `left ${args.join(' ')}`)
    }
    assert.ok(daemon.alive, daemon.output())
    assert.match(await leftOk(A.dir, ['stop']), /^stopped the synchronizer \(pid \d+\)$/)
    assert.equal((await daemon.exited).code, 0)
  })

  it('shows the daemon and its peers in status: online, offline, then behind', async () => {
    const a = await watch(A, ['--listen', A.address, '--peers', B.address])
    const b = await watch(B, ['--listen', B.address, '--peers', A.address])
    await until('A and B in sync', async () => {
      const peers = (await statusJson(A)).synchronizer?.peers ?? []
      return peers.length === 1 && peers[0]!.online && peers[0]!.sync === 'in sync'
    })
    // left sync through the daemon uses the session it already has with B, and keeps it.
    assert.match(await leftOk(A.dir, ['sync', '--quiet', B.address]), /^in sync at [a-z2-7]{8,}$/)
    assert.deepEqual((await statusJson(A)).synchronizer?.peers.map((p) => p.online), [true])
    const text = await leftOk(A.dir, ['status'])
    assert.match(text, /^synchronizer: (watching|committing|fetching|applying) since .*\(left watch, pid \d+, listening on 127\.0\.0\.1:27613\)$/m)
    assert.match(text, new RegExp(`^peer [0-9a-f]{16} \\(127\\.0\\.0\\.2:${PORT}\\): online since .*, in sync, received \\d+(\\.\\d)? [KM]?i?B, sent \\d+(\\.\\d)? [KM]?i?B$`, 'm'))
    const json = (await statusJson(A)).synchronizer!.peers[0]! as unknown as { received: number; sent: number }
    assert.ok(json.received > 0 && json.sent > 0, `traffic counted: ${JSON.stringify(json)}`)

    await leftOk(B.dir, ['stop'])
    await b.exited
    await until('B offline', async () => (await statusJson(A)).synchronizer?.peers.some((p) => !p.online) ?? false)

    await writeFile(join(A.share, 'later.txt'), 'B is away')
    await until('A committed later.txt', async () => (await messages(A))[0] !== 'third')
    const status = await statusJson(A)
    assert.equal(status.synchronizer?.pid, a.child.pid)
    assert.deepEqual(status.synchronizer?.peers.map((p) => [p.online, p.sync]), [[false, 'behind']])
    assert.deepEqual(status.changes, [])
  })

  it('commits with a message beside watch, once, and the commit reaches the other peer with it', async () => {
    const a = await watch(A, ['--listen', A.address, '--peers', B.address])
    const b = await watch(B, ['--listen', B.address, '--peers', A.address])
    const before = await messages(A)
    await until('B caught up', async () => (await messages(B))[0] === before[0])
    // A future mtime reads as a file still being written, so the watcher waits
    // and the user's commit is the one that takes it.
    const path = join(A.share, 'named.txt')
    await writeFile(path, 'made by hand')
    const future = new Date(Date.now() + 3_600_000)
    await utimes(path, future, future)
    assert.match(await leftOk(A.dir, ['commit', '-m', 'a message of my own']), /^\[[a-z2-7]{8,}\] a message of my own \(1 added/)
    await until('the named commit on B', async () => (await messages(B))[0] === 'a message of my own')
    assert.equal(await readFile(join(B.share, 'named.txt'), 'utf8'), 'made by hand')
    assert.deepEqual((await messages(A)).slice(0, 2), ['a message of my own', before[0]], 'the watcher did not commit it again')
    assert.ok(a.alive && b.alive)
  })

  it('refuses a second daemon with its pid, and replaces a socket left by kill -9', async () => {
    const first = await watch(A, ['--listen', A.address])
    const second = await left(A.dir, ['watch', '--listen', A.address])
    assertOneLineError(second, new RegExp(`a LEFT daemon already runs for this folder \\(pid ${first.child.pid}\\)`))
    assertOneLineError(await left(A.dir, ['serve']), /already runs/)
    const socket = controlSocketPath(join(A.dir, '.left'))
    assert.equal((await stat(socket)).mode & 0o777, 0o600)
    assert.equal((await stat(join(A.dir, '.left'))).mode & 0o777, 0o700)

    await first.kill('SIGKILL')
    assert.ok((await stat(socket)).isSocket(), 'kill -9 leaves the socket behind')
    // No daemon: the stale socket is noticed and the command runs here.
    assert.match(await leftOk(A.dir, ['log', '-n', '1']), /^commit /)
    const again = await watch(A, ['--listen', A.address])
    assert.match(await leftOk(A.dir, ['status']), new RegExp(`pid ${again.child.pid}`))
  })

  it('answers garbage, oversized, silent and vanishing clients with an error or a timeout, and keeps serving', async () => {
    const daemon = await watch(A, ['--listen', A.address])
    const path = controlSocketPath(join(A.dir, '.left'))
    const garbage = await rawClient(path, (s) => s.write('this is not json\n'))
    assert.match(garbage, /^\{"type":"hello".*\n\{"type":"error","code":"LEFT_CONTROL","message":"control message is not JSON"\}\n$/)
    const wrongVersion = await rawClient(path, (s) => s.write('{"type":"run","version":99,"argv":["log"],"cwd":"/","terminal":{}}\n'))
    assert.match(wrongVersion, /unsupported control protocol version 99/)
    const huge = await rawClient(path, (s) => s.write(Buffer.alloc(2 * 1024 * 1024, 0x61)))
    assert.match(huge, /control message longer than/)
    // Vanishes mid-command: the daemon must not mind writing to a closed socket.
    await rawClient(path, (s) => {
      s.write(JSON.stringify({ type: 'run', version: 1, argv: ['log'], cwd: A.dir, terminal: { stdoutIsTTY: false, stderrIsTTY: false, debug: false } }) + '\n')
      s.destroy()
    })
    // Silent: sends nothing and is answered with a timeout (10 s).
    const silent = await rawClient(path, () => {})
    assert.match(silent, /no request within 10000 ms/)

    assert.ok(daemon.alive, daemon.output())
    assert.match(await leftOk(A.dir, ['log', '-n', '1']), /^commit /)
    // And it still serves its peers.
    assert.match(await leftOk(B.dir, ['sync', '--quiet', A.address]), /^in sync at /)
  })

  it('streams events as they happen, and replays the kept ones after an id', async () => {
    assertOneLineError(await left(A.dir, ['events']), /no synchronizer is running/)
    assertOneLineError(await left(A.dir, ['events', '--type', 'nonsense']), /unknown event type "nonsense"/)
    const daemon = await watch(A, ['--listen', A.address])
    const json = spawnLeft(A.dir, ['events', '--json'])
    const text = spawnLeft(A.dir, ['events', '--type', 'commit'])
    // Both streams are open once the daemon has them: a commit made after that is seen by both.
    await until('two event streams', async () => (await statusJson(A)).synchronizer !== null && json.alive && text.alive)
    await sleep(500)
    await writeFile(join(A.share, 'event.txt'), 'e')
    const { match } = await json.waitFor(/^\{"type":"commit".*"id":(\d+)/)
    const event = JSON.parse(match.input!) as { type: string; added: number; id: number; time: string }
    assert.equal(event.added, 1)
    assert.match(event.time, /^\d{4}-\d\d-\d\dT/)
    await text.waitFor(/^\d\d:\d\d:\d\d committed bafy\w+: 1 added, 0 modified, 0 deleted$/)

    const replay = spawnLeft(A.dir, ['events', '--json', '--since', String(event.id - 1)])
    const again = await replay.waitFor(/"type":"commit"/)
    assert.equal((JSON.parse(again.match.input!) as { id: number }).id, event.id)
    // The daemon stops: every stream ends, with exit 0.
    await leftOk(A.dir, ['stop'])
    for (const p of [json, text, replay]) assert.equal((await p.exited).code, 0, p.output())
    assert.equal((await daemon.exited).code, 0)
  })

  it('pauses a peer, remembers it across a restart, and catches up on resume', async () => {
    assertOneLineError(await left(A.dir, ['pause', 'not an address']), /./)
    let a = await watch(A, ['--listen', A.address, '--peers', B.address])
    const b = await watch(B, ['--listen', B.address, '--peers', A.address])
    await until('A and B in sync', async () => (await statusJson(A)).synchronizer?.peers.some((p) => p.online && p.sync === 'in sync') ?? false)
    assert.equal(await leftOk(A.dir, ['pause', B.host]), `paused syncing with ${B.host}`)
    assert.deepEqual(JSON.parse(await readFile(join(A.dir, '.left/config'), 'utf8')).paused, [B.host])
    await writeFile(join(A.share, 'while-paused.txt'), 'not for B yet')
    await until('A committed it', async () => (await logIds(A))[0] !== (await logIds(B))[0])
    // Give a paused peer every chance to sync: B redials A within this time.
    await sleep(2_000)
    await assert.rejects(readFile(join(B.share, 'while-paused.txt')), () => true, a.output() + b.output())
    const status = await statusJson(A)
    assert.deepEqual(status.synchronizer?.peers.map((p) => [p.online, (p as { paused?: boolean }).paused, p.sync]), [[false, true, 'behind']])
    assert.match(await leftOk(A.dir, ['status']), /^paused: 127\.0\.0\.2$/m)

    await leftOk(A.dir, ['stop'])
    await a.exited
    a = await watch(A, [])
    await sleep(2_000)
    await assert.rejects(readFile(join(B.share, 'while-paused.txt')), () => true, 'still paused after a restart')
    assertOneLineError(await left(A.dir, ['resume', '127.0.0.9']), /127\.0\.0\.9 is not paused \(paused: 127\.0\.0\.2\)/)
    assert.equal(await leftOk(A.dir, ['resume']), 'resumed syncing with all peers')
    await until('B has the file', async () => (await readFile(join(B.share, 'while-paused.txt'), 'utf8').catch(() => '')) === 'not for B yet')
    assert.ok(a.alive && b.alive)
  })

  it('puts the socket in a private directory under the temp dir when .left/ is too deep for a socket path', async () => {
    const deep = join(A.dir, '..', 'd'.repeat(60), 'e'.repeat(60))
    await mkdir(deep, { recursive: true })
    await leftOk(deep, ['init', '--key', set.key])
    const socket = controlSocketPath(join(deep, '.left'))
    assert.equal(dirname(socket), join(tmpdir(), `left-${process.getuid!()}`))
    const daemon = await watch({ ...A, dir: deep, share: join(deep, 'share') }, ['--listen', `${A.host}:0`])
    assert.match(await leftOk(deep, ['status']), new RegExp(`pid ${daemon.child.pid}`))
    assert.equal((await stat(dirname(socket))).mode & 0o777, 0o700)
    // A directory others can open could hold someone else's socket: refused.
    await chmod(dirname(socket), 0o755)
    try {
      assertOneLineError(await left(deep, ['log']), /must be a directory of yours that only you can open/)
    } finally {
      await chmod(dirname(socket), 0o700)
    }
    assert.match(await leftOk(deep, ['stop']), /^stopped/)
    await daemon.exited
  })
})
