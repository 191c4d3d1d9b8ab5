import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { RAW, cidOf } from '../../src/object/index.js'
import { Store } from '../../src/store/store.js'
import { tempDir } from '../helpers/cli.js'

const raw = (text: string): { cid: ReturnType<typeof cidOf>; bytes: Uint8Array } => {
  const bytes = new TextEncoder().encode(text)
  return { cid: cidOf(RAW, bytes), bytes }
}

/** The 8-byte big-endian key of chunk sequence number `n`. */
function seqKey(n: number): Uint8Array {
  const key = new Uint8Array(8)
  new DataView(key.buffer).setBigUint64(0, BigInt(n))
  return key
}

describe('store: opening and chunk keys', () => {
  let root: string
  let cleanup: () => Promise<void>
  let n = 0
  before(async () => ({ dir: root, cleanup } = await tempDir('left-store-')))
  after(() => cleanup())

  it('creates a store only when asked to', async () => {
    const path = join(root, `s-${n++}`)
    await assert.rejects(Store.open(path), { code: 'LEFT_STORE_DAMAGED' })
    const store = await Store.open(path, { create: true })
    await store.close()
    const again = await Store.open(path)
    await again.close()
  })

  it('refuses a database whose CURRENT file is gone, keeps its tables, and opens whole once it is back', async () => {
    const path = join(root, `s-${n++}`)
    const store = await Store.open(path, { create: true })
    const a = raw('kept across the damage')
    await store.write({ blocks: [a] })
    await store.close()
    for (const db of ['index', 'chunks']) {
      const before = (await readdir(join(path, db))).filter((f) => f !== 'CURRENT' && !f.startsWith('LOG')).sort()
      await rename(join(path, db, 'CURRENT'), join(root, 'CURRENT.aside'))
      await assert.rejects(Store.open(path), (err: Error & { code?: string }) => err.code === 'LEFT_STORE_DAMAGED' && err.message.includes(join(path, db)))
      const after = (await readdir(join(path, db))).filter((f) => f !== 'CURRENT' && !f.startsWith('LOG')).sort()
      assert.deepEqual(after, before, 'no table was deleted or added')
      await rename(join(root, 'CURRENT.aside'), join(path, db, 'CURRENT'))
    }
    const whole = await Store.open(path)
    assert.deepEqual(Buffer.from((await whole.get(a.cid))!), Buffer.from(a.bytes))
    await whole.close()
  })

  it('never reuses a chunk key an index entry points at, even when the newest chunk data is lost', async () => {
    const path = join(root, `s-${n++}`)
    const store = await Store.open(path, { create: true })
    const first = raw('first chunk')
    const lost = raw('a chunk whose data will be lost')
    await store.write({ blocks: [first] })
    await store.write({ blocks: [lost] })
    await store.close()
    // Lose the newest chunk's data, as a chunk database that lost its newest table would.
    const chunks = new Level<Uint8Array, Uint8Array>(join(path, 'chunks'), { keyEncoding: 'view', valueEncoding: 'view' })
    const data = chunks.sublevel<Uint8Array, Uint8Array>('d', { keyEncoding: 'view', valueEncoding: 'view' })
    assert.ok((await data.get(seqKey(1))) !== undefined)
    await data.del(seqKey(1))
    await chunks.close()

    const reopened = await Store.open(path)
    const fresh = raw('written after the loss')
    await reopened.write({ blocks: [fresh] })
    assert.deepEqual(Buffer.from((await reopened.get(fresh.cid))!), Buffer.from(fresh.bytes))
    assert.equal(await reopened.get(lost.cid), undefined, 'the lost chunk reads as missing, not as the new one')
    assert.deepEqual(Buffer.from((await reopened.get(first.cid))!), Buffer.from(first.bytes))
    await reopened.close()
  })

  it('clears the stat cache in the same batch that writes its new entries', async () => {
    const store = await Store.open(join(root, `s-${n++}`), { create: true })
    try {
      const entry = (cid: string) => ({ size: 1, mtimeMs: 1, ctimeMs: 1, ino: 1, cid })
      await store.write({ stat: new Map([['old.txt', entry('old')], ['kept-by-name.txt', entry('old')]]) })
      await store.write({ clearStat: true, stat: new Map([['kept-by-name.txt', entry('new')], ['new.txt', entry('new')]]) })
      assert.deepEqual([...(await store.loadStatCache())].sort(), [['kept-by-name.txt', entry('new')], ['new.txt', entry('new')]])
    } finally {
      await store.close()
    }
  })
})
