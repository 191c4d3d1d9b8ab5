import { after, before } from 'node:test'
import { join } from 'node:path'
import { Level } from 'level'
import { MemoryLevel } from 'memory-level'
import { Store } from '../../src/store/index.js'
import { tempDir } from '../helpers/cli.js'
import { storeConformance } from './conformance.js'

type Bytes = Uint8Array
const view = { keyEncoding: 'view', valueEncoding: 'view' } as const

let root = ''
let cleanup: () => Promise<void> = async () => {}
let n = 0
before(async () => ({ dir: root, cleanup } = await tempDir('left-conformance-')))
after(() => cleanup())

storeConformance('LevelDB', async () => {
  const path = join(root, `s-${n++}`)
  await (await Store.open(path, { create: true })).close()
  return {
    open: () => Store.open(path),
    raw: async () => {
      const index = new Level<Bytes, Bytes>(join(path, 'index'), view)
      const chunks = new Level<Bytes, Bytes>(join(path, 'chunks'), view)
      await index.open()
      await chunks.open()
      return { index, chunks, path }
    }
  }
})

storeConformance('memory-level', async () => {
  // The same two databases back every reopen, as the two directories do on disk.
  const index = new MemoryLevel<Bytes, Bytes>(view)
  const chunks = new MemoryLevel<Bytes, Bytes>(view)
  const levels = { index, chunks, path: 'memory' }
  return {
    open: () => Store.openOn(levels),
    raw: async () => {
      await index.open()
      await chunks.open()
      return levels
    }
  }
})
