import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import type { CID } from 'multiformats/cid'
import { DAG_CBOR, FLAT_DIR_MAX, RAW, bucketAt, cidOf, encodeNode, nameHash } from '../../src/object/index.js'
import type { Block } from '../../src/object/index.js'
import { type Repo, storeOf } from '../../src/repo/repo.js'
import { Store } from '../../src/store/store.js'
import { diffTrees } from '../../src/tree/diff.js'
import { loadCommit } from '../../src/tree/source.js'
import { type FetchProgress, fetchClosure, fetchHistory } from '../../src/sync/fetch.js'
import { tempDir } from '../helpers/cli.js'
import { StoreSource, assertStoreWhole, countObjects, fsckFrom, initRepo, repoWithCommit } from './fixtures.js'
import { fsck } from '../../src/repo/maintenance.js'

const isCode = (code: string) => (err: unknown): boolean => (err as { code?: unknown }).code === code

/** A dir entry as dag-cbor data, built by hand so that it may be invalid. */
function rawEntry(name: string, kind: string, cid: CID, size: number): Record<string, unknown> {
  return { name, kind, cid, size, mtime: kind === 'file' ? 1_700_000_000_000 : 0, exec: false }
}

function rawBlock(data: unknown): Block {
  const bytes = dagCbor.encode(data)
  return { cid: cidOf(DAG_CBOR, bytes), bytes }
}

function commitOf(tree: CID, message = 'hostile'): Block {
  return encodeNode({ type: 'commit', tree, parents: [], generation: 1, author: 'mallory', time: 1_700_000_000_000, message })
}

describe('sync/fetch: closure fetch between two real stores', () => {
  let root: string
  let cleanup: () => Promise<void>
  let source: Repo
  let head: CID
  let total: number
  let fileCount: number
  let fileBytes: number
  let n = 0
  const open: Store[] = []

  /** A fresh, empty store in the temp dir, closed by the after hook. */
  async function freshStore(): Promise<Store> {
    const store = await Store.open(join(root, `dest-${n++}`), { create: true })
    open.push(store)
    return store
  }

  before(async () => {
    ;({ dir: root, cleanup } = await tempDir('left-fetch-'))
    ;({ repo: source, head } = await repoWithCommit(join(root, 'source'), 'fetch'))
    total = await countObjects(storeOf(source))
    const report = await fsckFrom(storeOf(source), head)
    assert.equal(report.objects, total, 'the fixture store holds exactly one closure')
    fileCount = 0
    fileBytes = 0
    const tree = (await loadCommit(storeOf(source), head)).tree
    for await (const c of diffTrees(storeOf(source), undefined, tree)) {
      if (c.after?.kind === 'file') {
        fileCount++
        fileBytes += c.after.size
      }
    }
    assert.equal(fileCount, 3 * 5 + 4)
  })

  after(async () => {
    for (const s of open) await s.close().catch(() => {})
    await source?.close()
    await cleanup()
  })

  it('fetches the whole closure once per object, and the copy passes fsck', async () => {
    const dest = await freshStore()
    const src = new StoreSource(storeOf(source), { jitter: true })
    const progress: FetchProgress[] = []
    const result = await fetchClosure(head, dest, src, { onProgress: (p) => progress.push(p) })
    assert.equal(result.objects, total)
    assert.equal(result.resumed, 0)
    assert.equal(src.requests.length, total)
    assert.equal(new Set(src.requests).size, total, 'no object is asked for twice')
    assert.equal(result.files, fileCount)
    assert.equal(result.expectedBytes, fileBytes)
    assert.deepEqual(progress.map((p) => p.objects), Array.from({ length: total }, (_, i) => i + 1))
    assert.ok(await dest.has(head))
    assert.equal(await assertStoreWhole(dest), total)
    const report = await fsckFrom(dest, head)
    assert.deepEqual({ objects: report.objects, missing: report.missing, corrupt: report.corrupt }, { objects: total, missing: [], corrupt: [] })
    assert.equal(report.bytes, (await fsckFrom(storeOf(source), head)).bytes)
  })

  it('refuses a root of the wrong kind at once when a commit is expected, and stores nothing', async () => {
    const dest = await freshStore()
    const tree = (await loadCommit(storeOf(source), head)).tree
    const src = new StoreSource(storeOf(source))
    await assert.rejects(fetchClosure(tree, dest, src, { root: 'commit' }), (err: Error) => isCode('LEFT_PROTOCOL')(err) && /a dir .* where a commit belongs/.test(err.message))
    assert.equal(src.delivered.length, 1, 'only the root was asked for')
    assert.equal(await countObjects(dest), 0)
  })

  it('asks for nothing when the commit is already stored', async () => {
    const dest = await freshStore()
    await fetchClosure(head, dest, new StoreSource(storeOf(source)))
    const again = new StoreSource(storeOf(source))
    const result = await fetchClosure(head, dest, again)
    assert.deepEqual(again.requests, [])
    assert.equal(result.objects, 0)
  })

  it('asks once for an object that one node links many times', async () => {
    // A file of 100 identical chunks (a zero-filled disk image looks like
    // this), listed twice in one directory: more links than the leaf window.
    const chunk = Buffer.alloc(1024, 7)
    const chunkCid = cidOf(RAW, chunk)
    const file = encodeNode({ type: 'file', height: 0, size: 100 * 1024, links: Array.from({ length: 100 }, () => ({ cid: chunkCid, size: 1024 })) })
    const entry = (name: string) => ({ name, kind: 'file' as const, cid: file.cid, size: 100 * 1024, mtime: 1, exec: false })
    const dir = encodeNode({ type: 'dir', entries: [entry('a.img'), entry('b.img')] })
    const commit = commitOf(dir.cid)
    const from = await freshStore()
    await from.write({ blocks: [{ cid: chunkCid, bytes: chunk }, file, dir, commit] })
    const dest = await freshStore()
    const src = new StoreSource(from, { jitter: true })
    const result = await fetchClosure(commit.cid, dest, src)
    assert.deepEqual([...src.requests].sort(), [chunkCid, file.cid, dir.cid, commit.cid].map(String).sort())
    // The second file holds nothing the first did not bring.
    assert.equal(result.files, 1)
    assert.equal(await assertStoreWhole(dest), 4)
  })

  it('resumes an interrupted fetch by asking only for what never arrived', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: total - 1 }), async (cut) => {
      const dest = await freshStore()
      const first = new StoreSource(storeOf(source), { failAfter: cut, jitter: true })
      let rejected = false
      let lateWrites = 0
      // The real store, watched: nothing may be written after the fetch has rejected.
      const watched = {
        get: (c: CID) => dest.get(c),
        has: (c: CID) => dest.has(c),
        hasMany: (c: readonly CID[]) => dest.hasMany(c),
        getStaged: (c: CID) => dest.getStaged(c),
        write: (w: Parameters<Store['write']>[0]) => { if (rejected) lateWrites++; return dest.write(w) },
        stage: (b: Block) => { if (rejected) lateWrites++; return dest.stage(b) }
      }
      await assert.rejects(fetchClosure(head, watched, first), /connection dropped/)
      rejected = true
      await first.settled()
      await new Promise((resolve) => setTimeout(resolve, 20))
      assert.equal(lateWrites, 0, 'the fetch settled while it was still writing')
      assert.equal(first.delivered.length, cut)
      // Whatever landed is complete below itself. The head may have landed
      // with its history, but then it is thin until its content is in.
      const historyIn = await dest.has(head)
      if (historyIn) assert.ok((await dest.thinCommits()).has(head.toString()))
      await assertStoreWhole(dest)

      const second = new StoreSource(storeOf(source), { jitter: true })
      const result = await fetchClosure(head, dest, second)
      assert.ok(historyIn || result.resumed >= 1, 'the commit staged by the first run is not asked for again')
      assert.ok(!(await dest.thinCommits()).has(head.toString()), 'with its content in, the head is not thin')
      const again = second.requests.filter((c) => first.delivered.includes(c))
      assert.deepEqual(again, [], 'objects delivered before the cut are not asked for again')
      assert.equal(first.delivered.length + second.requests.length, total)
      const report = await fsckFrom(dest, head)
      assert.deepEqual([report.objects, report.missing.length, report.corrupt.length], [total, 0, 0])
    }), { numRuns: 8, includeErrorInReport: true })
  })

  it('rejects wrong bytes with HashMismatchError and stores nothing of them', async () => {
    const chunks: CID[] = []
    for await (const cid of storeOf(source).objectCids()) if (cid.code === RAW) chunks.push(cid)
    for (const victim of [head, chunks[chunks.length - 1]!]) {
      const dest = await freshStore()
      const src = new StoreSource(storeOf(source), {
        tamper: (cid, bytes) => {
          if (!cid.equals(victim)) return bytes
          const copy = Buffer.from(bytes)
          copy[copy.length >> 1] = copy[copy.length >> 1]! ^ 1
          return copy
        }
      })
      await assert.rejects(fetchClosure(head, dest, src), (err: Error) => isCode('LEFT_HASH_MISMATCH')(err) && err.message.includes(victim.toString()))
      assert.ok(src.requests.includes(victim.toString()))
      assert.ok(!(await dest.has(victim)))
      assert.equal(await dest.getStaged(victim), undefined)
      // A bad commit stops the history; a bad chunk comes after it, so the
      // history is in and the commit stays thin until its content is.
      if (victim.code === RAW) assert.ok((await dest.thinCommits()).has(head.toString()))
      else assert.ok(!(await dest.has(head)))
      await assertStoreWhole(dest)
      // The store is not poisoned: an honest peer completes the fetch.
      await fetchClosure(head, dest, new StoreSource(storeOf(source)))
      assert.equal((await fsckFrom(dest, head)).corrupt.length, 0)
    }
  })

  it('rejects a directory with an unsafe entry name as a protocol error, before storing or following it', async () => {
    const inner = Buffer.from('would land outside the share')
    const innerCid = cidOf(RAW, inner)
    for (const name of ['../x', 'a/b', '..', '.', '', '/etc', 'x\0y']) {
      const evilDir = rawBlock({ type: 'dir', entries: [rawEntry(name, 'file', innerCid, inner.length)] })
      const commit = commitOf(evilDir.cid, name)
      const from = await freshStore()
      await from.write({ blocks: [{ cid: innerCid, bytes: inner }, evilDir, commit] })
      const dest = await freshStore()
      const src = new StoreSource(from)
      await assert.rejects(fetchClosure(commit.cid, dest, src), (err: Error) => isCode('LEFT_PROTOCOL')(err) && /invalid entry name/.test(err.message), JSON.stringify(name))
      assert.deepEqual(src.requests, [commit.cid.toString(), evilDir.cid.toString()], 'the entry is never followed')
      assert.equal(await countObjects(dest), 0)
      assert.equal(await dest.getStaged(evilDir.cid), undefined)
      assert.ok(!(await dest.has(commit.cid)))
    }
  })

  it('rejects a node of the wrong type where a tree belongs', async () => {
    const chunk = Buffer.from('content')
    const fileNode = encodeNode({ type: 'file', height: 0, size: chunk.length, links: [{ cid: cidOf(RAW, chunk), size: chunk.length }] })
    const commit = commitOf(fileNode.cid)
    const from = await freshStore()
    await from.write({ blocks: [{ cid: cidOf(RAW, chunk), bytes: chunk }, fileNode, commit] })
    const dest = await freshStore()
    await assert.rejects(fetchClosure(commit.cid, dest, new StoreSource(from)), (err: Error) => isCode('LEFT_PROTOCOL')(err) && /where a dir belongs/.test(err.message))
    assert.equal(await countObjects(dest), 0)
  })

  it('refuses a sharded directory that hides an entry in the wrong bucket, or lies about a count, as a protocol error', async () => {
    const entries = Array.from({ length: FLAT_DIR_MAX + 1 }, (_, i) => `file-${i}`).sort().map((name) => rawEntry(name, 'file', cidOf(RAW, Buffer.from(name)), name.length))
    const byBucket = new Map<number, Array<Record<string, unknown>>>()
    for (const e of entries) {
      const b = bucketAt(nameHash(e['name'] as string), 0)
      byBucket.set(b, [...(byBucket.get(b) ?? []), e])
    }
    const indexes = [...byBucket.keys()].sort((a, b) => a - b)
    const cases = [
      { why: /sits in the wrong bucket/, lists: indexes.map((i) => (i === indexes[1] ? [...byBucket.get(i)!, { ...byBucket.get(indexes[0]!)![0]! }].sort((a, b) => Buffer.compare(Buffer.from(a['name'] as string), Buffer.from(b['name'] as string))) : byBucket.get(i)!)), lie: 0 },
      { why: /does not hold the count its shard declares/, lists: indexes.map((i) => byBucket.get(i)!), lie: 1 }
    ]
    for (const c of cases) {
      const buckets = c.lists.map((list) => rawBlock({ type: 'dir', entries: list }))
      const shard = rawBlock({ type: 'shard', depth: 0, buckets: indexes.map((index, k) => [index, c.lists[k]!.length + (k === 0 ? c.lie : 0), buckets[k]!.cid]) })
      const commit = commitOf(shard.cid, `shard ${c.lie}`)
      const from = await freshStore()
      await from.write({ blocks: [...buckets, shard, commit] })
      const dest = await freshStore()
      await assert.rejects(fetchClosure(commit.cid, dest, new StoreSource(from)), (err: Error) => isCode('LEFT_PROTOCOL')(err) && c.why.test(err.message))
      assert.equal(await dest.has(commit.cid), false)
      assert.equal(await dest.has(shard.cid), false)
    }
  })

  it('stores the history and keeps the commit thin when the peer lacks its content', async () => {
    const chunk = Buffer.from('never sent')
    const dir = encodeNode({ type: 'dir', entries: [{ name: 'f', kind: 'file', cid: cidOf(RAW, chunk), size: chunk.length, mtime: 1, exec: false }] })
    const commit = commitOf(dir.cid)
    const from = await freshStore()
    await from.write({ blocks: [dir, commit] }) // deliberately without the chunk
    const dest = await freshStore()
    await assert.rejects(fetchClosure(commit.cid, dest, new StoreSource(from)), (err: Error) => isCode('LEFT_CONTENT_ABSENT')(err) && /content of f is not here/.test(err.message))
    assert.equal(await countObjects(dest), 2)
    assert.deepEqual([...await dest.thinCommits()], [commit.cid.toString()])
    await assertStoreWhole(dest)
    // Not HEAD, whose content must always be here: a commit a ref names.
    await dest.write({ refs: { 'reflog/1': commit.cid } })
    const report = await fsck(dest)
    assert.deepEqual([report.missing, report.corrupt, report.absent], [[], [], { chunks: 1, bytes: chunk.length }])
  })

  it('item 9: refuses a chain of file nodes whose heights do not step down by one, after a handful of requests', async () => {
    const chunk = Buffer.from('x')
    const chunkCid = cidOf(RAW, chunk)
    // 10,000 nodes, heights 1, 2, 1, 2 ... from the bottom: each decodes on
    // its own, and without the height rule reading it recursed 10,000 deep.
    let below = encodeNode({ type: 'file', height: 0, size: 1, links: [{ cid: chunkCid, size: 1 }] })
    const blocks: Block[] = [{ cid: chunkCid, bytes: chunk }, below]
    for (let i = 0; i < 10_000; i++) {
      below = encodeNode({ type: 'file', height: 1 + (i % 2), size: 1, links: [{ cid: below.cid, size: 1 }] })
      blocks.push(below)
    }
    const dir = encodeNode({ type: 'dir', entries: [{ name: 'f', kind: 'file', cid: below.cid, size: 1, mtime: 1, exec: false }] })
    const commit = commitOf(dir.cid)
    const from = await freshStore()
    await from.write({ blocks: [...blocks, dir, commit] })
    const dest = await freshStore()
    const src = new StoreSource(from)
    await assert.rejects(fetchClosure(commit.cid, dest, src), (err: Error) => isCode('LEFT_PROTOCOL')(err) && /of height 2 where its parent needs 0/.test(err.message))
    assert.ok(src.requests.length <= 5, `${src.requests.length} requests`)
    assert.equal(await countObjects(dest), 0)
  })

  it('item 9: refuses a chunk or a file node that is not as big as its parent says', async () => {
    const chunk = Buffer.from('seven b')
    const chunkCid = cidOf(RAW, chunk)
    const node = encodeNode({ type: 'file', height: 0, size: 7, links: [{ cid: chunkCid, size: 7 }] })
    const cases: Array<{ blocks: Block[]; entry: { cid: CID; size: number }; why: RegExp }> = [
      { blocks: [], entry: { cid: chunkCid, size: 1 << 30 }, why: /chunk .* of 7 bytes where its file says 1073741824/ },
      { blocks: [node], entry: { cid: node.cid, size: 8 }, why: /file node .* of 7 bytes where its parent says 8/ }
    ]
    for (const c of cases) {
      const dir = encodeNode({ type: 'dir', entries: [{ name: 'f', kind: 'file', ...c.entry, mtime: 1, exec: false }] })
      const commit = commitOf(dir.cid)
      const from = await freshStore()
      await from.write({ blocks: [{ cid: chunkCid, bytes: chunk }, ...c.blocks, dir, commit] })
      const dest = await freshStore()
      await assert.rejects(fetchClosure(commit.cid, dest, new StoreSource(from)), (err: Error) => isCode('LEFT_PROTOCOL')(err) && c.why.test(err.message))
      assert.ok(!(await dest.has(chunkCid)), 'the wrong chunk is not stored')
    }
  })
})

describe('repo/gc: never during a fetch', () => {
  it('waits until a fetch in progress has ended', async () => {
    const { dir: root, cleanup } = await tempDir('left-gc-fetch-')
    const { repo: source, head } = await repoWithCommit(join(root, 'source'), 'gc')
    const dest = await initRepo(join(root, 'dest'))
    try {
      let release!: () => void
      const held = new Promise<void>((resolve) => { release = resolve })
      // A fetch that has stored the history and waits, as one does mid-transfer.
      const fetch = dest.fetching(async () => {
        await fetchHistory(head, dest.objects, new StoreSource(storeOf(source)), { root: 'commit' })
        await held
      })
      await new Promise((resolve) => setTimeout(resolve, 20))
      let collected = false
      const gcRun = dest.gc().then((r) => { collected = true; return r })
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.equal(collected, false, 'gc waits while the fetch runs')
      release()
      await fetch
      await gcRun
      // No ref reaches the fetched head yet: gc, which ran after the fetch, may
      // collect it now, but never while the fetch could still use it.
      assert.ok(collected)
    } finally {
      await dest.close()
      await source.close()
      await cleanup()
    }
  })
})

describe('repo/integrate: a file-node bomb (issue 8 item 9)', () => {
  it('fetches the five objects that declare a 1 PiB file, and refuses to write it before writing anything', async () => {
    const { dir: root, cleanup } = await tempDir('left-bomb-')
    const from = await Store.open(join(root, 'from'), { create: true })
    const dest = await initRepo(join(root, 'dest'))
    try {
      const chunk = Buffer.alloc(1024, 7)
      let link = { cid: cidOf(RAW, chunk), size: chunk.length }
      const blocks: Block[] = [{ cid: link.cid, bytes: chunk }]
      // Each level repeats one link 1,024 times: 1 KiB, 1 MiB, 1 GiB, 1 TiB, 1 PiB.
      for (let height = 0; height < 4; height++) {
        const node = encodeNode({ type: 'file', height, size: link.size * 1024, links: Array.from({ length: 1024 }, () => link) })
        blocks.push(node)
        link = { cid: node.cid, size: link.size * 1024 }
      }
      assert.equal(link.size, 2 ** 50)
      const tree = encodeNode({ type: 'dir', entries: [{ name: 'petabyte.bin', kind: 'file', ...link, mtime: 1, exec: false }, { name: 'small.txt', kind: 'file', cid: blocks[0]!.cid, size: 1024, mtime: 1, exec: false }] })
      const commit = commitOf(tree.cid)
      await from.write({ blocks: [...blocks, tree, commit] })
      await fetchClosure(commit.cid, dest.objects, new StoreSource(from))
      await assert.rejects(dest.integrate(commit.cid), (err: Error & { data?: { needed?: number } }) => isCode('LEFT_NO_SPACE')(err) && (err.data?.needed ?? 0) > 2 ** 50)
      assert.deepEqual(await readdir(dest.share), [], 'nothing was written, not even the small file')
      assert.deepEqual(await readdir(dest.layout.tmpDir), [])
      assert.equal(await dest.head(), undefined)
    } finally {
      await dest.close()
      await from.close()
      await cleanup()
    }
  })

  it('walks a subtree that many files share once, not once per file', async () => {
    const { dir: root, cleanup } = await tempDir('left-shared-')
    const from = await Store.open(join(root, 'from'), { create: true })
    const dest = await initRepo(join(root, 'dest'))
    try {
      const chunks = Array.from({ length: 512 }, (_, i) => Buffer.from(`shared chunk ${i}`))
      const sharedSize = chunks.reduce((n, c) => n + c.length, 0)
      const shared = encodeNode({ type: 'file', height: 0, size: sharedSize, links: chunks.map((c) => ({ cid: cidOf(RAW, c), size: c.length })) })
      const blocks: Block[] = [shared, ...chunks.map((c) => ({ cid: cidOf(RAW, c), bytes: c }))]
      const entries = []
      // Each file has a root of its own (so none is a copy of another), linking the shared node.
      for (let i = 0; i < 300; i++) {
        const own = Buffer.from(`own chunk ${i}`)
        const tail = encodeNode({ type: 'file', height: 0, size: own.length, links: [{ cid: cidOf(RAW, own), size: own.length }] })
        const size = sharedSize + own.length
        const top = encodeNode({ type: 'file', height: 1, size, links: [{ cid: shared.cid, size: sharedSize }, { cid: tail.cid, size: own.length }] })
        blocks.push({ cid: cidOf(RAW, own), bytes: own }, tail, top)
        entries.push({ name: `f${String(i).padStart(3, '0')}.bin`, kind: 'file' as const, cid: top.cid, size, mtime: 1, exec: false })
      }
      const tree = encodeNode({ type: 'dir', entries: entries.slice(0, FLAT_DIR_MAX) })
      const commit = commitOf(tree.cid)
      await from.write({ blocks: [...blocks, tree, commit] })
      let reads = 0
      const counting = new Proxy(dest.objects, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target) as unknown
          if (prop === 'get') return async (cid: CID) => { if (cid.equals(shared.cid)) reads++; return target.get(cid) }
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
        }
      })
      await fetchClosure(commit.cid, counting, new StoreSource(from))
      assert.ok(reads <= 3, `the shared node was read ${reads} times for ${FLAT_DIR_MAX} files`)
      await dest.integrate(commit.cid)
      assert.equal((await readdir(dest.share)).length, FLAT_DIR_MAX)
    } finally {
      await dest.close()
      await from.close()
      await cleanup()
    }
  })
})
