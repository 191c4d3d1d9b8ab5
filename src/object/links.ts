/** The outgoing links of any object: what a walk must visit below it. */
import type { CID } from 'multiformats/cid'
import { RAW } from './cid.js'
import { decodeNode } from './codec.js'
import type { Node } from './types.js'

/** The CIDs a decoded node links to, in a stable order. */
export function nodeLinks(node: Node): CID[] {
  switch (node.type) {
    case 'commit': return [node.tree, ...node.parents]
    case 'dir': return node.entries.map((e) => e.cid)
    case 'shard': return node.buckets.map((b) => b.cid)
    case 'file': return node.links.map((l) => l.cid)
  }
}

/** The CIDs an object links to: none for raw bytes, otherwise decoded and validated. */
export function objectLinks(cid: CID, bytes: Uint8Array): CID[] {
  return cid.code === RAW ? [] : nodeLinks(decodeNode(bytes))
}
