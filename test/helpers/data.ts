/** Deterministic test data: the same bytes on every machine, so golden values can be pinned. */
import { createHash } from 'node:crypto'

/**
 * `length` pseudo-random bytes from a seed: sha256(seed || counter) blocks
 * concatenated. Stable across Node versions, unlike Math.random.
 */
export function seededBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length)
  let off = 0
  for (let i = 0; off < length; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest()
    off += block.copy(out, off)
  }
  return out
}
