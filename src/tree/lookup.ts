/** Finding one path inside a snapshot. */
import type { CID } from 'multiformats/cid'
import type { DirEntry } from '../object/index.js'
import { findEntry } from './directory.js'
import type { ObjectSource } from './source.js'

/**
 * The entry at share-relative posix `path` under the tree `root`, or
 * undefined. The empty path is the root itself, returned as a dir entry.
 */
export async function lookupPath(src: ObjectSource, root: CID, path: string): Promise<DirEntry | undefined> {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.')
  let entry: DirEntry = { name: '', kind: 'dir', cid: root, size: 0, mtime: 0, exec: false }
  for (const part of parts) {
    if (entry.kind !== 'dir') return undefined
    const next = await findEntry(src, entry.cid, part)
    if (next === undefined) return undefined
    entry = next
  }
  return entry
}
