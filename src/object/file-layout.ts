/**
 * Lays a file's chunk list out as a tree of file nodes. Node boundaries are
 * content-defined (a link ends its node when the low 6 bits of its CID's
 * last digest byte are 0, or when the node is full), like the chunk boundaries one level down. So an
 * edit in the middle of a huge file rewrites only the nodes on one root path,
 * O(log n), instead of shifting every node after it.
 */
import type { CID } from 'multiformats/cid'
import { type Block, MAX_FILE_LINKS, encodeNode } from './codec.js'
import { EMPTY_CID } from './cid.js'
import type { FileLink } from './types.js'

/** What a finished file becomes in its directory entry. */
export interface FileRoot {
  /** A raw chunk when the file is one chunk (or empty), otherwise the top file node. */
  readonly cid: CID
  readonly size: number
}

/**
 * True when `cid` closes the node it is added to: when the low 6 bits of its
 * digest's last byte are 0, 1 link in 64 on average. Small nodes keep deltas
 * small: an edit re-sends the nodes on its root path, and a node that lists
 * 64 links is about 2.7 KB where one of 256 was about 11 KB (and the node
 * that holds a given link is, on average, twice the mean size).
 */
function endsNode(cid: CID): boolean {
  const digest = cid.multihash.digest
  return (digest[digest.length - 1]! & 0x3f) === 0
}

/**
 * Streaming builder: feed chunk links in file order with `add`, store the
 * blocks each call returns, then call `finish` for the rest and the root.
 * Memory holds at most one open node per level.
 */
export class FileLayout {
  private readonly levels: FileLink[][] = []

  /** Appends one chunk; returns any file nodes that this closed. */
  add(chunk: FileLink): Block[] {
    const out: Block[] = []
    this.push(0, chunk, out)
    return out
  }

  /** Closes all open nodes; returns them and the file's root. */
  finish(): { blocks: Block[]; root: FileRoot } {
    const out: Block[] = []
    for (let height = 0; height < this.levels.length; height++) {
      const pending = this.levels[height]!
      const isTop = this.levels.slice(height + 1).every((l) => l.length === 0)
      if (isTop && pending.length === 1) {
        this.levels.length = 0
        return { blocks: out, root: pending[0]! }
      }
      if (pending.length > 0) this.close(height, out)
    }
    // Only an empty file reaches here: no chunk was ever added. Its root is
    // the empty chunk, which the caller must store like any other.
    return { blocks: [{ cid: EMPTY_CID, bytes: new Uint8Array(0) }], root: { cid: EMPTY_CID, size: 0 } }
  }

  private push(height: number, link: FileLink, out: Block[]): void {
    const level = (this.levels[height] ??= [])
    level.push(link)
    if (endsNode(link.cid) || level.length >= MAX_FILE_LINKS) this.close(height, out)
  }

  private close(height: number, out: Block[]): void {
    const links = this.levels[height]!
    this.levels[height] = []
    let size = 0
    for (const l of links) size += l.size
    const block = encodeNode({ type: 'file', height, size, links })
    out.push(block)
    this.push(height + 1, { cid: block.cid, size }, out)
  }
}
