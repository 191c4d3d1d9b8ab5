/** Building small trees in memory from a literal spec, for tests of pure tree logic. */
import type { CID } from 'multiformats/cid'
import { RAW, cidOf, layoutDir } from '../../src/object/index.js'
import type { DirEntry } from '../../src/object/index.js'

/** A tree spec: a string is a file (mtime 1000), an object a directory, `file()`/`link()` leaves. */
export type Spec = { readonly [name: string]: string | Spec | Leaf }
export interface Leaf { readonly leaf: 'file' | 'link'; readonly content: string; readonly mtime?: number; readonly exec?: boolean }

/** A file leaf with explicit mtime or exec bit. */
export const file = (content: string, opts: { mtime?: number; exec?: boolean } = {}): Leaf => ({ leaf: 'file', content, ...opts })
/** A symlink leaf. */
export const link = (target: string): Leaf => ({ leaf: 'link', content: target })

/** Encodes `spec` into `objects` (CID string → bytes), leaves included; returns the root CID. */
export function buildTree(objects: Map<string, Uint8Array>, spec: Spec): CID {
  const entries: DirEntry[] = Object.keys(spec).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((name) => {
    const v = spec[name]!
    if (typeof v === 'object' && !('leaf' in v)) return { name, kind: 'dir', cid: buildTree(objects, v as Spec), size: 0, mtime: 0, exec: false }
    const leaf: Leaf = typeof v === 'string' ? file(v) : (v as Leaf)
    const bytes = Buffer.from(leaf.content)
    const cid = cidOf(RAW, bytes)
    objects.set(cid.toString(), bytes)
    if (leaf.leaf === 'link') return { name, kind: 'link', cid, size: bytes.length, mtime: 0, exec: false }
    return { name, kind: 'file', cid, size: bytes.length, mtime: leaf.mtime ?? 1000, exec: leaf.exec ?? false }
  })
  const { root, blocks } = layoutDir(entries)
  for (const block of blocks) objects.set(block.cid.toString(), block.bytes)
  return root.cid
}
