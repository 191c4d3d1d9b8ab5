import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { RAW, cidOf } from '../../src/object/index.js'
import { Store } from '../../src/store/store.js'
import { tempDir } from '../helpers/cli.js'

const raw = (text: string): { cid: ReturnType<typeof cidOf>; bytes: Uint8Array } => {
  const bytes = new TextEncoder().encode(text)
  return { cid: cidOf(RAW, bytes), bytes }
}

describe('store on LevelDB: opening', () => {
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
})
