/**
 * The store conformance suite: the contract of src/store/interface.ts,
 * run against every backend the store runs on (LevelDB and memory-level,
 * see conformance.test.ts), as abstract-level runs one suite against each
 * of its backends. Damage is done through the raw databases, in the layout
 * src/store/store.ts documents, so it means the same on every backend.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { type Block, RAW, cidOf, encodeNode } from '../../src/object/index.js'
import { fsck, gc } from '../../src/repo/maintenance.js'
import type { DirStat, StatEntry, Store, StoreLevels } from '../../src/store/index.js'

/** One store's backing, which outlives the Store objects opened on it. */
export interface StoreBacking {
  /** Opens (or reopens, after close) a Store on this backing. */
  open(): Promise<Store>
  /** The raw databases, open, while no Store is; the caller closes them. */
  raw(): Promise<StoreLevels>
}

/** Makes a new, empty backing per test. */
export type StoreHarness = () => Promise<StoreBacking>

type Bytes = Uint8Array
const view = { keyEncoding: 'view', valueEncoding: 'view' } as const
const enc = new TextEncoder()

const raw = (text: string): Block => {
  const bytes = enc.encode(text)
  return { cid: cidOf(RAW, bytes), bytes }
}
const bytesOf = (b: Bytes | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString())

/** A one-file tree and a commit of it, as blocks in link order (children first). */
function commitOf(content: string, parents: readonly CID[], time: number): { commit: Block; blocks: Block[] } {
  const chunk = raw(content)
  const tree = encodeNode({ type: 'dir', entries: [{ name: 'f.txt', kind: 'file', cid: chunk.cid, size: chunk.bytes.length, mtime: 0, exec: false }] })
  const sorted = [...parents].sort((a, b) => Buffer.compare(a.bytes, b.bytes))
  const commit = encodeNode({ type: 'commit', tree: tree.cid, parents: sorted, generation: sorted.length === 0 ? 1 : 2, author: 'peer', time, message: content })
  return { commit, blocks: [chunk, tree, commit] }
}

/** The 8-byte big-endian key of chunk sequence number `n`. */
function seqKey(n: number): Bytes {
  const key = new Uint8Array(8)
  new DataView(key.buffer).setBigUint64(0, BigInt(n))
  return key
}

/** Runs `damage` on the raw databases of a closed store, then reopens it. */
async function damaged(backing: StoreBacking, damage: (levels: StoreLevels) => Promise<void>): Promise<Store> {
  const levels = await backing.raw()
  try {
    await damage(levels)
  } finally {
    await levels.index.close()
    await levels.chunks.close()
  }
  return backing.open()
}

/** Opens a store on a fresh backing, runs `body`, and closes it whatever happens. */
async function withStore(harness: StoreHarness, body: (store: Store, backing: StoreBacking) => Promise<Store | void>): Promise<void> {
  const backing = await harness()
  let store = await backing.open()
  try {
    store = (await body(store, backing)) ?? store
  } finally {
    await store.close()
  }
}

/** Registers the whole suite for one backend. */
export function storeConformance(backend: string, harness: StoreHarness): void {
  describe(`store conformance: ${backend}`, () => {
    it('reads back what it stored, and reads what it lacks as undefined', () => withStore(harness, async (store) => {
      const a = raw('chunk a')
      const dir = encodeNode({ type: 'dir', entries: [{ name: 'a', kind: 'file', cid: a.cid, size: a.bytes.length, mtime: 0, exec: false }] })
      const absent = raw('never stored')
      await store.write({ blocks: [a, dir] })
      assert.equal(bytesOf(await store.get(a.cid)), 'chunk a')
      assert.deepEqual(Buffer.from((await store.get(dir.cid))!), Buffer.from(dir.bytes))
      assert.equal(await store.get(absent.cid), undefined)
      const many = await store.getMany([a.cid, absent.cid, dir.cid, a.cid])
      assert.deepEqual(many.map((b) => (b === undefined ? undefined : Buffer.from(b))), [Buffer.from('chunk a'), undefined, Buffer.from(dir.bytes), Buffer.from('chunk a')])
      assert.deepEqual(await store.getMany([]), [])
      assert.deepEqual(await store.hasMany([absent.cid, dir.cid, a.cid]), [false, true, true])
      assert.equal(await store.has(absent.cid), false)
      const listed = []
      for await (const cid of store.objectCids()) listed.push(cid.toString())
      assert.deepEqual(listed.sort(), [a.cid.toString(), dir.cid.toString()].sort())
    }))

    it('sets, lists by prefix in name order, and deletes refs', () => withStore(harness, async (store) => {
      const [x, y, z] = [raw('x'), raw('y'), raw('z')]
      await store.write({ blocks: [x, y, z], refs: { HEAD: x.cid, 'reflog/2': z.cid, 'reflog/1': y.cid, reflogs: x.cid } })
      assert.equal((await store.getRef('HEAD'))?.toString(), x.cid.toString())
      assert.deepEqual((await store.listRefs('reflog/')).map(([n, c]) => [n, c.toString()]), [['reflog/1', y.cid.toString()], ['reflog/2', z.cid.toString()]])
      assert.deepEqual((await store.listRefs()).map(([n]) => n), ['HEAD', 'reflog/1', 'reflog/2', 'reflogs'])
      await store.write({ refs: { 'reflog/1': null } })
      assert.deepEqual((await store.listRefs('reflog/')).map(([n]) => n), ['reflog/2'])
      assert.equal(await store.getRef('missing'), undefined)
    }))

    it('finds commits by prefix, at most limit of them, and forgets deleted ones', () => withStore(harness, async (store) => {
      const commits = [commitOf('one', [], 1), commitOf('two', [], 2), commitOf('three', [], 3)]
      await store.write({ blocks: commits.flatMap((c) => c.blocks), commits: commits.map((c) => c.commit.cid) })
      const ids = commits.map((c) => c.commit.cid.toString()).sort()
      // Every id starts with the same multibase and CID header: the prefix lookup must look past it.
      assert.deepEqual(await store.findCommits('bafy', 10), ids)
      assert.deepEqual(await store.findCommits('bafy'), ids.slice(0, 2), 'the default limit is two, enough to tell unique from ambiguous')
      assert.deepEqual(await store.findCommits(ids[1]!.slice(0, 40)), [ids[1]])
      assert.deepEqual(await store.findCommits('bafyzzz'), [])
      await store.deleteObjects([commits[0]!.commit.cid])
      assert.deepEqual(await store.findCommits('bafy', 10), ids.filter((id) => id !== commits[0]!.commit.cid.toString()))
    }))

    it('sequence recovery: never reuses the key of a chunk whose data was lost', () => withStore(harness, async (first, backing) => {
      const kept = raw('first chunk')
      const lost = raw('a chunk whose data will be lost')
      await first.write({ blocks: [kept] })
      await first.write({ blocks: [lost] })
      await first.close()
      // Lose the newest chunk's data, as a chunk database that lost its newest table would.
      const store = await damaged(backing, async ({ chunks }) => {
        const data = chunks.sublevel<Bytes, Bytes>('d', view)
        assert.notEqual(await data.get(seqKey(1)), undefined)
        await data.del(seqKey(1))
      })
      const fresh = raw('written after the loss')
      await store.write({ blocks: [fresh] })
      assert.equal(bytesOf(await store.get(fresh.cid)), 'written after the loss')
      assert.equal(await store.get(lost.cid), undefined, 'the lost chunk reads as missing, not as the new one')
      assert.equal(await store.has(lost.cid), true, 'still listed, so fsck calls it corrupt')
      assert.equal(bytesOf(await store.get(kept.cid)), 'first chunk')
      // getMany agrees with get, in order, the lost chunk included.
      assert.deepEqual((await store.getMany([lost.cid, kept.cid, fresh.cid, lost.cid])).map((b) => (b === undefined ? undefined : bytesOf(b))),
        [undefined, 'first chunk', 'written after the loss', undefined])
      return store
    }))

    it('object format: refuses a store of another format, or of format 1 with no mark, and changes nothing', () => withStore(harness, async (first, backing) => {
      const c = commitOf('kept', [], 1)
      await first.write({ blocks: c.blocks, commits: [c.commit.cid], refs: { HEAD: c.commit.cid } })
      await first.close()
      for (const mark of ['1', undefined, '3']) {
        await assert.rejects(damaged(backing, async ({ index }) => {
          const meta = index.sublevel<Bytes, Bytes>('m', view)
          if (mark === undefined) await meta.del(Buffer.from('format'))
          else await meta.put(Buffer.from('format'), Buffer.from(mark))
        }), (err: { code?: string; message?: string }) => err.code === 'LEFT_STORE_FORMAT' && err.message!.includes(`format ${mark ?? '1'}`))
      }
      const store = await damaged(backing, async ({ index }) => {
        await index.sublevel<Bytes, Bytes>('m', view).put(Buffer.from('format'), Buffer.from('2'))
      })
      assert.equal((await store.getRef('HEAD'))?.toString(), c.commit.cid.toString(), 'nothing was lost')
      return store
    }))

    it('sequence recovery: continues past the last chunk stored when the counter is lost', () => withStore(harness, async (first, backing) => {
      const chunks = [raw('c0'), raw('c1'), raw('c2')]
      for (const c of chunks) await first.write({ blocks: [c] })
      await first.close()
      const store = await damaged(backing, async ({ index }) => {
        const meta = index.sublevel<Bytes, Bytes>('m', view)
        const keys: string[] = []
        for await (const k of meta.keys()) keys.push(Buffer.from(k).toString())
        assert.deepEqual(keys.sort(), ['format', 'nextSeq'], 'the counter and the format mark')
        await meta.del(Buffer.from('nextSeq'))
      })
      const fresh = raw('after the counter was lost')
      await store.write({ blocks: [fresh] })
      for (const c of chunks) assert.equal(bytesOf(await store.get(c.cid)), bytesOf(c.bytes))
      assert.equal(bytesOf(await store.get(fresh.cid)), 'after the counter was lost')
      return store
    }))

    it('orphan sweep: drops chunk data nothing points at, and keeps a chunk stored twice readable', () => withStore(harness, async (first, backing) => {
      const twice = raw('stored by two fetches at once')
      // Two writes of one chunk store its bytes under two keys; the index keeps the last.
      await Promise.all([first.write({ blocks: [twice] }), first.write({ blocks: [twice] })])
      await first.close()
      let before = 0
      // A crash between a write's two halves leaves data with no index entry.
      const store = await damaged(backing, async ({ chunks }) => {
        const data = chunks.sublevel<Bytes, Bytes>('d', view)
        await data.put(seqKey(1000), enc.encode('orphaned by a crash'))
        for await (const _ of data.keys()) before++
      })
      assert.equal(before, 3)
      await store.deleteObjects([])
      await store.close()
      let after = 0
      const reopened = await damaged(backing, async ({ chunks }) => {
        for await (const _ of chunks.sublevel<Bytes, Bytes>('d', view).keys()) after++
      })
      assert.equal(after, 1, 'only the data the index points at is left')
      assert.equal(bytesOf(await reopened.get(twice.cid)), 'stored by two fetches at once')
      return reopened
    }))

    it('gc keeps every commit the reflog names, with its history, and drops what no ref reaches', () => withStore(harness, async (store) => {
      const c1 = commitOf('version 1', [], 1)
      const c2 = commitOf('version 2', [c1.commit.cid], 2)
      const other = commitOf('reachable from no ref', [], 3)
      const all = [c1, c2, other]
      await store.write({ blocks: all.flatMap((c) => c.blocks), commits: all.map((c) => c.commit.cid) })
      // HEAD went back to version 1 (a checkout); only the reflog still names version 2.
      await store.write({ refs: { HEAD: c1.commit.cid, 'reflog/0001': c2.commit.cid } })
      const result = await gc(store)
      assert.equal(result.removed, 3)
      for (const b of [...c1.blocks, ...c2.blocks]) assert.ok(await store.get(b.cid), `${bytesOf(b.bytes)?.slice(0, 20)} kept`)
      for (const b of other.blocks) assert.equal(await store.has(b.cid), false)
      assert.deepEqual(await store.findCommits('bafy', 10), [c1.commit.cid.toString(), c2.commit.cid.toString()].sort())
    }))

    it('records thin commits in the write that stores them, forgets the mark with the commit, and survives a reopen', () => withStore(harness, async (first, backing) => {
      const c1 = commitOf('old', [], 1)
      const c2 = commitOf('new', [c1.commit.cid], 2)
      // History only: the commit and its tree, not its chunk.
      await first.write({ blocks: [c1.blocks[1]!, c1.commit], commits: [c1.commit.cid], thinIfNew: [c1.commit.cid] })
      await first.write({ blocks: c2.blocks, commits: [c2.commit.cid], thinIfNew: [c2.commit.cid] })
      await first.write({ unthin: [c2.commit.cid] })
      assert.deepEqual([...await first.thinCommits()], [c1.commit.cid.toString()])
      // A second fetch storing the same commit again does not make it thin again.
      await first.write({ blocks: [c2.commit], commits: [c2.commit.cid], thinIfNew: [c2.commit.cid] })
      assert.deepEqual([...await first.thinCommits()], [c1.commit.cid.toString()])
      await first.close()
      const store = await backing.open()
      assert.deepEqual([...await store.thinCommits()], [c1.commit.cid.toString()])
      await store.deleteObjects([c1.commit.cid])
      assert.deepEqual([...await store.thinCommits()], [])
      return store
    }))

    it('gc drops content only thin commits reach, keeps the content others share, and keeps every commit and tree', () => withStore(harness, async (store) => {
      const shared = raw('in both versions')
      const gone = raw('only in the old version')
      const file = (name: string, b: Block) => ({ name, kind: 'file' as const, cid: b.cid, size: b.bytes.length, mtime: 0, exec: false })
      const oldTree = encodeNode({ type: 'dir', entries: [file('a', shared), file('b', gone)] })
      const newTree = encodeNode({ type: 'dir', entries: [file('a', shared)] })
      const oldCommit = encodeNode({ type: 'commit', tree: oldTree.cid, parents: [], generation: 1, author: 'peer', time: 1, message: 'old' })
      const newCommit = encodeNode({ type: 'commit', tree: newTree.cid, parents: [oldCommit.cid], generation: 2, author: 'peer', time: 2, message: 'new' })
      await store.write({ blocks: [shared, gone, oldTree, newTree, oldCommit, newCommit], commits: [oldCommit.cid, newCommit.cid], refs: { HEAD: newCommit.cid } })
      await store.write({ thin: [oldCommit.cid] })
      const entry = (b: Block): StatEntry => ({ size: b.bytes.length, mtimeMs: 1, ctimeMs: 1, ino: 1, cid: b.cid.toString() })
      await store.write({ stat: new Map([['a', entry(shared)], ['b', entry(gone)]]) })
      const report = await fsck(store)
      assert.deepEqual([report.missing, report.corrupt, report.absent], [[], [], { chunks: 0, bytes: 0 }])
      assert.deepEqual(await gc(store), { removed: 1, kept: 5 })
      assert.equal(await store.has(gone.cid), false)
      for (const b of [shared, oldTree, newTree, oldCommit, newCommit]) assert.ok(await store.get(b.cid))
      // The stat cache forgets the file whose content went, and only that one: no full re-read.
      assert.deepEqual([...(await store.loadStatCache()).keys()], ['a'])
      const after = await fsck(store)
      assert.deepEqual([after.missing, after.corrupt, after.absent], [[], [], { chunks: 1, bytes: gone.bytes.length }])
      // The same chunk missing below a commit that is not thin is damage.
      await store.write({ unthin: [oldCommit.cid] })
      assert.deepEqual((await fsck(store)).missing, [gone.cid.toString()])
    }))

    it('gc stops, deleting nothing, at a listed node it cannot decode', () => withStore(harness, async (first, backing) => {
      const good = commitOf('good', [], 1)
      const loose = raw('reachable from no ref')
      await first.write({ blocks: [...good.blocks, loose], refs: { HEAD: good.commit.cid } })
      await first.close()
      const treeCid = good.blocks[1]!.cid
      const store = await damaged(backing, async ({ index }) => {
        await index.sublevel<Bytes, Bytes>('o', view).put(treeCid.bytes, enc.encode('not dag-cbor'))
      })
      await assert.rejects(gc(store), { code: 'LEFT_FSCK_FAILED' })
      assert.equal(await store.has(loose.cid), true, 'nothing was deleted')
      return store
    }))

    it('leaves damaged stat cache entries out and loads the rest', () => withStore(harness, async (first, backing) => {
      const good: StatEntry = { size: 3, mtimeMs: 1.5, ctimeMs: 2, ino: 7, cid: 'bafkreiabc' }
      await first.write({ stat: new Map([['good.txt', good]]) })
      await first.close()
      const store = await damaged(backing, async ({ index }) => {
        const stats = index.sublevel<Bytes, Bytes>('s', view)
        await stats.put(enc.encode('not-json.txt'), enc.encode('{"size": 3, "mt'))
        await stats.put(enc.encode('null.txt'), enc.encode('null'))
        await stats.put(enc.encode('wrong-shape.txt'), enc.encode('{"size":"3","mtimeMs":1,"ctimeMs":1,"ino":1,"cid":"x"}'))
        await stats.put(enc.encode('no-cid.txt'), enc.encode('{"size":3,"mtimeMs":1,"ctimeMs":1,"ino":1}'))
      })
      assert.deepEqual([...(await store.loadStatCache())], [['good.txt', good]])
      assert.deepEqual(await store.statEntry('good.txt'), good)
      assert.equal(await store.statEntry('not-json.txt'), undefined)
      assert.equal(await store.statEntry('wrong-shape.txt'), undefined)
      assert.equal(await store.statEntry('absent.txt'), undefined)
      return store
    }))

    it('reads the stat cache one directory at a time, and forgets whole subtrees', () => withStore(harness, async (store) => {
      const at = (ino: number): StatEntry => ({ size: 1, mtimeMs: 1, ctimeMs: 1, ino, cid: 'bafkreiabc' })
      // Names around '/' in byte order: 'x.txt' < 'x/...' < 'x0' < 'xy'.
      const paths = ['top', 'x.txt', 'x/a', 'x/deep/b', 'x/deep/c', 'x0', 'xy/z', 'xy/zz/w', 'é/f']
      await store.write({ stat: new Map(paths.map((p, i) => [p, at(i)])) })
      const top = await store.statDir('')
      assert.deepEqual([...top.files.keys()], ['top', 'x.txt', 'x0'])
      assert.deepEqual([...top.dirs], ['x', 'xy', 'é'])
      assert.deepEqual(top.files.get('x0'), at(5))
      const x = await store.statDir('x')
      assert.deepEqual([...x.files.keys()], ['a'])
      assert.deepEqual([...x.dirs], ['deep'])
      assert.deepEqual([...(await store.statDir('x/deep')).files.keys()], ['b', 'c'])
      assert.deepEqual([...(await store.statDir('xy/zz')).files.keys()], ['w'])
      assert.deepEqual(await store.statDir('nothing'), { files: new Map(), dirs: new Set() })
      // Forgetting 'x' leaves its neighbours 'x.txt' and 'x0' alone.
      await store.write({ statUnder: ['x'] })
      assert.deepEqual([...(await store.loadStatCache()).keys()], ['top', 'x.txt', 'x0', 'xy/z', 'xy/zz/w', 'é/f'])
      // The top folder's subtree is everything.
      await store.write({ statUnder: [''] })
      assert.deepEqual(await store.loadStatCache(), new Map())
    }))
    it("keeps a directory's own entry until a file entry in it changes or its subtree is forgotten", () => withStore(harness, async (store) => {
      const at = (ino: number): StatEntry => ({ size: 1, mtimeMs: 1, ctimeMs: 1, ino, cid: 'bafkreiabc' })
      const d: DirStat = { cid: 'bafyreiabc', at: 5, files: 1, dirs: { sub: 'bafyreidef' } }
      const self = async (dir: string): Promise<DirStat | undefined> => (await store.statDir(dir)).self
      // Written together with its files' entries, it stands: it was made after them.
      await store.write({ stat: new Map([['x/a', at(1)], ['y/b', at(2)]]), dirStat: new Map([['', d], ['x', d], ['x/sub', d], ['y', d]]) })
      for (const dir of ['', 'x', 'x/sub', 'y']) assert.deepEqual(await self(dir), d, dir)
      const top = await store.statDir('')
      assert.deepEqual([[...top.files.keys()], [...top.dirs]], [[], ['x', 'y']], "the top's own entry is no file")
      assert.deepEqual([...(await store.statDir('x')).dirs], ['sub'])
      // A file entry that changes drops its own directory's entry, and only that.
      await store.write({ stat: new Map([['x/a', null]]) })
      assert.deepEqual([await self('x'), await self('x/sub'), await self('y'), await self('')], [undefined, d, d, d])
      await store.write({ stat: new Map([['t', at(3)]]) })
      assert.equal(await self(''), undefined)
      // Forgetting a subtree drops the entries in it and its parent's.
      await store.write({ dirStat: new Map([['x', d], ['', d]]) })
      await store.write({ statUnder: ['x/sub'] })
      assert.deepEqual([await self('x/sub'), await self('x'), await self('')], [undefined, undefined, d])
      await store.write({ dirStat: new Map([['y', null]]) })
      assert.deepEqual(await store.loadStatCache(), new Map<string, StatEntry | DirStat>([['', d], ['t', at(3)], ['y/b', at(2)]]))
    }))

    it('leaves a damaged directory entry out', () => withStore(harness, async (first, backing) => {
      await first.close()
      const store = await damaged(backing, async ({ index }) => {
        const stats = index.sublevel<Bytes, Bytes>('s', view)
        await stats.put(enc.encode('x/'), enc.encode('{"cid":"bafyreiabc","at":1,"files":1}'))
        await stats.put(enc.encode('y/'), enc.encode('{"cid":"bafyreiabc","at":1,"files":1,"dirs":{"s":7}}'))
        await stats.put(enc.encode(''), enc.encode('[]'))
      })
      assert.equal((await store.statDir('x')).self, undefined)
      assert.equal((await store.statDir('')).self, undefined)
      assert.deepEqual(await store.loadStatCache(), new Map())
      return store
    }))

    it('keeps staged nodes apart from the objects, until unstaged or cleared', () => withStore(harness, async (store) => {
      const a = raw('a'); const b = raw('b')
      const dirOf = (c: Block): Block => encodeNode({ type: 'dir', entries: [{ name: 'x', kind: 'file', cid: c.cid, size: 1, mtime: 0, exec: false }] })
      const [da, db] = [dirOf(a), dirOf(b)]
      await store.stage(da)
      await store.stage(db)
      assert.deepEqual(Buffer.from((await store.getStaged(da.cid))!), Buffer.from(da.bytes))
      assert.equal(await store.has(da.cid), false, 'a staged node is not an object: its children may be missing')
      assert.equal(await store.get(da.cid), undefined)
      await store.write({ blocks: [a, da], unstage: [da.cid] })
      assert.equal(await store.getStaged(da.cid), undefined)
      assert.equal(await store.has(da.cid), true)
      await store.clearStaging()
      assert.equal(await store.getStaged(db.cid), undefined)
    }))

    it('keeps everything across a close and reopen', () => withStore(harness, async (first, backing) => {
      const c = commitOf('durable', [], 5)
      await first.write({ blocks: c.blocks, commits: [c.commit.cid], refs: { HEAD: c.commit.cid } })
      await first.close()
      const store = await backing.open()
      assert.equal((await store.getRef('HEAD'))?.toString(), c.commit.cid.toString())
      for (const b of c.blocks) assert.deepEqual(Buffer.from((await store.get(b.cid))!), Buffer.from(b.bytes))
      assert.deepEqual(await store.findCommits('bafy'), [c.commit.cid.toString()])
      return store
    }))
  })
}
