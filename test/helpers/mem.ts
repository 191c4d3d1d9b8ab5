/** Objects in a map, as both source and sink, counting reads: for tests of pure tree and history code. */
import type { CID } from 'multiformats/cid'
import { type Block, type DirEntry, layoutDir } from '../../src/object/index.js'
import { sortByName } from '../../src/tree/directory.js'
import type { ObjectSink, ObjectSource } from '../../src/tree/source.js'

export class Mem implements ObjectSource, ObjectSink {
  readonly objects = new Map<string, Uint8Array>()
  /** Reads so far; tests reset it to count the reads of one call. */
  loads = 0
  async get(cid: CID): Promise<Uint8Array | undefined> {
    this.loads++
    return this.objects.get(cid.toString())
  }
  put(block: Block): void {
    this.objects.set(block.cid.toString(), block.bytes)
  }
  /** Lays out and stores a directory of `entries`; returns its root. */
  dir(entries: readonly DirEntry[]): CID {
    const { root, blocks } = layoutDir(sortByName(entries))
    for (const b of blocks) this.put(b)
    return root.cid
  }
}
