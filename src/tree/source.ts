/**
 * The narrow capabilities that tree and history code read and write objects
 * through. They keep those modules pure: tests hand them a Map, the repo
 * hands them the Store.
 */
import type { CID } from 'multiformats/cid'
import { MissingObjectError } from '../errors.js'
import { type Block, decodeCommit, decodeFileNode } from '../object/index.js'
import type { Commit, FileNode } from '../object/index.js'

/** Reads objects by CID; a missing object is undefined. */
export interface ObjectSource {
  get(cid: CID): Promise<Uint8Array | undefined>
  /** `get` for many at once, in order, where the source can do it in fewer round trips. */
  getMany?(cids: readonly CID[]): Promise<Array<Uint8Array | undefined>>
}

/** `get` for every CID in `cids`, in order: at once where `src` can. */
export function getAll(src: ObjectSource, cids: readonly CID[]): Promise<Array<Uint8Array | undefined>> {
  return src.getMany !== undefined ? src.getMany(cids) : Promise.all(cids.map((cid) => src.get(cid)))
}

/** Accepts newly made objects. */
export interface ObjectSink {
  put(block: Block): void | Promise<void>
}

/** Reads an object or throws MissingObjectError. */
export async function mustGet(src: ObjectSource, cid: CID): Promise<Uint8Array> {
  const bytes = await src.get(cid)
  if (bytes === undefined) throw new MissingObjectError(cid.toString())
  return bytes
}

/** Reads and decodes a file node. */
export async function loadFileNode(src: ObjectSource, cid: CID): Promise<FileNode> {
  return decodeFileNode(await mustGet(src, cid))
}

/** Reads and decodes a commit. */
export async function loadCommit(src: ObjectSource, cid: CID): Promise<Commit> {
  return decodeCommit(await mustGet(src, cid))
}

/**
 * A source that sees `overlay` first, then `base`: lets code read directory
 * nodes that a dry-run snapshot built without storing them.
 */
export function overlaySource(base: ObjectSource, overlay: ReadonlyMap<string, Uint8Array>): ObjectSource {
  return {
    async get(cid) {
      return overlay.get(cid.toString()) ?? (await base.get(cid))
    },
    async getMany(cids) {
      const out = cids.map((cid) => overlay.get(cid.toString()))
      const rest = cids.flatMap((_, i) => (out[i] === undefined ? [i] : []))
      const found = await getAll(base, rest.map((i) => cids[i]!))
      rest.forEach((i, j) => { out[i] = found[j] })
      return out
    }
  }
}
