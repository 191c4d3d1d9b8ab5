/** Deterministic test data: the same bytes on every machine, so golden values can be pinned. */
import { createHash } from 'node:crypto'
import type { PreviousChunks } from '../../src/chunk/fastcdc.js'
import { mkdir, open } from 'node:fs/promises'
import { dirname } from 'node:path'

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

/**
 * Writes `size` bytes of highly compressible text, like the coursework's 1 GB
 * test file: numbered log lines, so deflate shrinks it many times over, yet
 * no two chunks are equal (deduplication alone would make it trivial).
 */
export async function writeCompressibleFile(path: string, size: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  const fh = await open(path, 'w')
  try {
    let line = 0
    for (let written = 0; written < size;) {
      const lines: string[] = []
      for (let n = 0; n < 1 << 20; line++) {
        const l = `${String(line).padStart(10, '0')} sync ok: the quick brown fox jumps over the lazy dog\n`
        lines.push(l)
        n += l.length
      }
      const piece = Buffer.from(lines.join('')).subarray(0, size - written)
      await fh.write(piece)
      written += piece.length
    }
  } finally {
    await fh.close()
  }
}

/** `buf` cut at `lengths`, described as a file's previous version (for GuidedCutter). */
export function previousOf(buf: Uint8Array, lengths: readonly number[]): PreviousChunks {
  const digests = new Uint8Array(lengths.length * 32)
  let pos = 0
  lengths.forEach((n, j) => {
    digests.set(createHash('sha256').update(buf.subarray(pos, pos + n)).digest(), j * 32)
    pos += n
  })
  return { lengths, digests }
}
