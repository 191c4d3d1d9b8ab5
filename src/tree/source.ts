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
    }
  }
}
