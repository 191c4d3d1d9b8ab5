/**
 * `left migrate`: a folder made by a LEFT of object format 1 is refused
 * until it is migrated; migrating keeps every commit, file and message,
 * shards the big directory, and gives the same history on every peer that
 * migrates the same objects.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { type Block, DAG_CBOR, FileLayout, RAW, Store, cidOf, compareBytes, decodeNode } from '../../src/index.js'
import { assertOneLineError, left, leftOk, statusChanges, tempDir } from '../helpers/cli.js'

const node = (data: unknown): Block => {
  const bytes = dagCbor.encode(data)
  return { cid: cidOf(DAG_CBOR, bytes), bytes }
}

/** Writes format 1 objects for the share folder as it is: one directory node per directory, of any size. */
async function formatOneTree(share: string, names: Record<string, string[]>, blocks: Block[]): Promise<CID> {
  const entries = async (dir: string, list: readonly string[]): Promise<Array<Record<string, unknown>>> => {
    const out: Array<Record<string, unknown>> = []
    for (const name of [...list].sort()) {
      const path = join(share, dir, name)
      if (names[join(dir, name)] !== undefined) {
        const sub = node({ type: 'dir', entries: await entries(join(dir, name), names[join(dir, name)]!) })
        blocks.push(sub)
        out.push({ name, kind: 'dir', cid: sub.cid, size: 0, mtime: 0, exec: false })
        continue
      }
      const bytes = await readFile(path)
      const chunk = { cid: cidOf(RAW, bytes), bytes }
      // File roots are the same in both formats (one chunk in 64 ends a node of its own).
      const layout = new FileLayout()
      blocks.push(chunk, ...layout.add({ cid: chunk.cid, size: bytes.length }))
      const file = layout.finish()
      blocks.push(...file.blocks)
      out.push({ name, kind: 'file', cid: file.root.cid, size: bytes.length, mtime: Math.floor((await stat(path)).mtimeMs), exec: false })
    }
    return out
  }
  const root = node({ type: 'dir', entries: await entries('', names['']!) })
  blocks.push(root)
  return root.cid
}

describe('cli: left migrate (object format 1 to 2)', () => {
  it('refuses a format 1 folder until it is migrated, then keeps its history, files and messages, the same on every peer', async () => {
    const { dir: root, cleanup } = await tempDir('left-migrate-')
    try {
      const [a, b] = [join(root, 'a'), join(root, 'b')]
      await mkdir(a)
      await leftOk(a, ['init'])
      const key = await leftOk(a, ['key'])
      await mkdir(b)
      await leftOk(b, ['init', '--key', key])
      const big = Array.from({ length: 300 }, (_, i) => `f${i}.txt`)
      for (const share of [join(a, 'share'), join(b, 'share')]) {
        await mkdir(join(share, 'big'))
        for (const name of big) await writeFile(join(share, 'big', name), name)
      }
      // History as a format 1 LEFT wrote it: two commits, the big directory as one node.
      const blocks: Block[] = []
      await writeFile(join(a, 'share', 'a.txt'), 'one')
      const tree1 = await formatOneTree(join(a, 'share'), { '': ['a.txt', 'big'], big }, blocks)
      const first = node({ type: 'commit', tree: tree1, parents: [], author: 'peer1', time: 1_700_000_000_000, message: 'first' })
      await writeFile(join(a, 'share', 'a.txt'), 'two')
      const tree2 = await formatOneTree(join(a, 'share'), { '': ['a.txt', 'big'], big }, blocks)
      const second = node({ type: 'commit', tree: tree2, parents: [first.cid], author: 'peer1', time: 1_700_000_000_001, message: 'second' })
      // A side branch and the merge of both, as sync made them.
      const side = node({ type: 'commit', tree: tree1, parents: [first.cid], author: 'peer2', time: 1_700_000_000_002, message: 'side' })
      const parents = [second.cid, side.cid].sort((x, y) => compareBytes(x.bytes, y.bytes))
      const merge = node({ type: 'commit', tree: tree2, parents, author: 'peer2', time: 1_700_000_000_003, message: 'merge' })
      const unreadable = blocks.filter((x) => x.cid.code === DAG_CBOR && (() => {
        try {
          decodeNode(x.bytes)
          return false
        } catch {
          return true
        }
      })())
      assert.equal(new Set(unreadable.map((x) => x.cid.toString())).size, 1, 'format 2 cannot read the old big directory')
      const store = await Store.open(join(a, '.left', 'store'))
      await store.write({
        blocks: [...blocks, first, second, side, merge], commits: [first.cid, second.cid, side.cid, merge.cid],
        refs: { HEAD: merge.cid, 'reflog/000000000000001-first': first.cid }, thin: [side.cid], format: 1
      })
      await store.close()
      // The other peer holds the same history, copied as a format 1 peer would have synced it.
      await rm(join(b, '.left', 'store'), { recursive: true })
      await cp(join(a, '.left', 'store'), join(b, '.left', 'store'), { recursive: true })
      await cp(join(a, 'share', 'a.txt'), join(b, 'share', 'a.txt'), { preserveTimestamps: true })
      for (const name of big) await cp(join(a, 'share', 'big', name), join(b, 'share', 'big', name), { preserveTimestamps: true })

      for (const args of [['log'], ['status']]) {
        const r = await left(a, args)
        assertOneLineError(r, /holds object format 1, this left reads format 2/)
        assert.equal(r.code, 3)
      }
      const out = await leftOk(a, ['migrate'])
      assert.match(out, /^migrated 4 commits and \d+ directories from object format 1 to 2, and removed \d+ old objects; HEAD is [a-z2-7]{8,}$/)
      const log = JSON.parse(await leftOk(a, ['log', '--json'])) as Array<{ id: string; message: string; parents: string[] }>
      assert.deepEqual(log.map((c) => c.message), ['merge', 'side', 'second', 'first'])
      assert.equal(log[0]!.parents.length, 2)
      const reflog = await leftOk(a, ['reflog'])
      assert.match(reflog, /first/, 'the reflog entry moved to the new first commit')
      const stats = JSON.parse(await leftOk(a, ['stats', '--json'])) as { commits: number; thinCommits: number }
      assert.deepEqual([stats.commits, stats.thinCommits], [4, 1], 'the side commit is still marked as history only')
      assert.equal(await statusChanges(a), 'nothing to commit, share folder clean')
      assert.match(await leftOk(a, ['fsck']), /: ok$/)
      assert.equal(await readFile(join(a, 'share', 'a.txt'), 'utf8'), 'two')
      assert.equal(JSON.parse(await leftOk(a, ['versions', '--json', 'a.txt'])).length, 2)
      assert.match(await leftOk(a, ['migrate']), /already; nothing to do/)
      assert.match(await leftOk(a, ['restore', '-s', log[3]!.id, 'a.txt']), /restored a\.txt/)
      assert.equal(await readFile(join(a, 'share', 'a.txt'), 'utf8'), 'one')

      await leftOk(b, ['migrate'])
      const other = JSON.parse(await leftOk(b, ['log', '--json'])) as Array<{ id: string }>
      assert.deepEqual(other.map((c) => c.id), log.map((c) => c.id), 'each peer migrates to the same commits')
      assert.ok(compareBytes(Buffer.from(log[0]!.id), Buffer.from(second.cid.toString())) !== 0, 'the commits are new')
    } finally {
      await cleanup()
    }
  })

  it('stops before anything moves when an old object is damaged', async () => {
    const { dir: root, cleanup } = await tempDir('left-migrate-')
    try {
      await leftOk(root, ['init'])
      await writeFile(join(root, 'share', 'a.txt'), 'one')
      const blocks: Block[] = []
      const tree = await formatOneTree(join(root, 'share'), { '': ['a.txt'] }, blocks)
      const commit = node({ type: 'commit', tree, parents: [], author: 'peer1', time: 1_700_000_000_000, message: 'first' })
      // The tree's bytes, damaged on disk: a byte of the name flipped, still valid CBOR.
      const damaged = blocks.map((b) => (b.cid.equals(tree) ? { cid: b.cid, bytes: Buffer.from(Buffer.from(b.bytes).toString('latin1').replace('a.txt', 'b.txt'), 'latin1') } : b))
      const store = await Store.open(join(root, '.left', 'store'))
      await store.write({ blocks: [...damaged, commit], commits: [commit.cid], refs: { HEAD: commit.cid }, format: 1 })
      await store.close()
      const r = await left(root, ['migrate'])
      assertOneLineError(r, new RegExp(`${tree.toString()}`))
      assertOneLineError(await left(root, ['log']), /holds object format 1/)
    } finally {
      await cleanup()
    }
  })
})
