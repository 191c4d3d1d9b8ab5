import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { type PreviousChunks, chunkLengths } from '../../src/chunk/fastcdc.js'
import type { CID } from '../../src/object/index.js'
import { ChangedWhileRead, type ChunkBatch, type FileChunk, SPLIT_MIN_BYTES, chunksInWorkers } from '../../src/worktree/chunk-threads.js'
import { tempDir } from '../helpers/cli.js'
import { previousOf, seededBytes } from '../helpers/data.js'

const SIZE = 3 * SPLIT_MIN_BYTES

/** The batches the workers make of `bytes`, written to a file, along `previous`. */
async function batchesOf(bytes: Uint8Array, previous: PreviousChunks | undefined, has: (cids: readonly CID[]) => Promise<boolean[]>, onFile?: (path: string) => void): Promise<ChunkBatch[]> {
  const { dir, cleanup } = await tempDir()
  try {
    const path = join(dir, 'big.bin')
    await writeFile(path, bytes)
    onFile?.(path)
    const fh = await open(path)
    try {
      const out: ChunkBatch[] = []
      for await (const batch of chunksInWorkers(path, fh, bytes.length, previous, has)) out.push(batch)
      return out
    } finally {
      await fh.close()
    }
  } finally {
    await cleanup()
  }
}

/** The thread id of a new worker, which is then ended. */
async function probeThreadId(): Promise<number> {
  const w = new Worker('', { eval: true })
  const id = w.threadId
  await w.terminate()
  return id
}

const chunksIn = (batches: readonly ChunkBatch[]): FileChunk[] => batches.flatMap((b) => b.chunks)

/** Asserts that `chunks` are a plain cut of `bytes` with true CIDs, and that those carrying bytes carry the right ones. */
function assertPlainCut(chunks: readonly FileChunk[], bytes: Uint8Array): void {
  assert.deepEqual(chunks.map((c) => c.size), chunkLengths(bytes))
  let at = 0
  for (const c of chunks) {
    const slice = bytes.subarray(at, at + c.size)
    assert.deepEqual(Buffer.from(c.cid.multihash.digest), createHash('sha256').update(slice).digest(), `chunk at ${at}`)
    if (c.bytes !== undefined) assert.deepEqual(Buffer.from(c.bytes), Buffer.from(slice), `chunk at ${at}`)
    at += c.size
  }
}

const all = (value: boolean) => async (cids: readonly CID[]): Promise<boolean[]> => cids.map(() => value)

/** Bytes in the batches of the first half. */
function firstHalf(batches: readonly ChunkBatch[]): number {
  let bytes = 0
  for (const b of batches) if (b.half === 1) for (const c of b.chunks) bytes += c.size
  return bytes
}

describe('worktree/chunk-threads: a big file cut along its previous version, in two halves', () => {
  const old = seededBytes('halves', SIZE)

  it('takes the second half from the second worker where the cuts meet, for an edit on either side of the split', async () => {
    const cases: Array<[string, Buffer]> = [
      ['unchanged', old],
      ['8 bytes inserted before the middle', Buffer.concat([old.subarray(0, 5 << 20), Buffer.from('inserted'), old.subarray(5 << 20)])],
      ['4 KiB overwritten after the middle', Buffer.concat([old.subarray(0, 17 << 20), seededBytes('patch', 4096), old.subarray((17 << 20) + 4096)])],
      ['1 MiB deleted at the middle', Buffer.concat([old.subarray(0, 12 << 20), old.subarray(13 << 20)])],
      // Each of the second worker's batches holds a cut chunk, but most of its bytes are followed.
      ['a byte changed in every 2 MiB of the second half', Buffer.from(old.map((b, i) => (i >= SIZE / 2 && i % (2 << 20) === 4096 ? b ^ 1 : b)))],
    ]
    const previous = previousOf(old, chunkLengths(old))
    for (const [what, bytes] of cases) {
      const batches = await batchesOf(bytes, previous, all(true))
      assertPlainCut(chunksIn(batches), bytes)
      // Unchanged, it is only hashed: nothing is cut, and the store holds every chunk, so none is read twice.
      if (what === 'unchanged') assert.ok(chunksIn(batches).every((c) => c.bytes === undefined))
      // The halves meet near the middle, and the second worker's half follows.
      const first = firstHalf(batches)
      assert.ok(first >= bytes.length / 2 - (1 << 20) && first < bytes.length / 2 + (1 << 20), `${what}: the first half is ${first} bytes`)
      assert.deepEqual(batches.map((b) => b.half), batches.map((b) => b.half).sort(), what)
      assert.ok(batches.at(-1)!.half === 2, what)
    }
  })

  it('reads again, and checks, the chunks of the second half that the store lacks', async () => {
    const bytes = Buffer.concat([old.subarray(0, 20 << 20), seededBytes('new tail', 1 << 20)])
    const chunks = chunksIn(await batchesOf(bytes, previousOf(old, chunkLengths(old)), all(false)))
    assertPlainCut(chunks, bytes)
    assert.ok(chunks.every((c) => c.bytes !== undefined))
  })

  it('says the file changed when a chunk read again no longer matches', async () => {
    let path = ''
    let edited = false
    // Asked about the first chunks, which are hashed already, it edits them first.
    const overwrite = async (cids: readonly CID[]): Promise<boolean[]> => {
      if (!edited) {
        const fh = await open(path, 'r+')
        await fh.write(seededBytes('late edit', 1 << 20), 0, 1 << 20, 0)
        await fh.close()
        edited = true
      }
      return cids.map(() => false)
    }
    await assert.rejects(batchesOf(old, previousOf(old, chunkLengths(old)), overwrite, (p) => { path = p }), ChangedWhileRead)
  })

  it('keeps both workers for the next file once the halves meet', async () => {
    const bytes = Buffer.concat([old.subarray(0, 17 << 20), seededBytes('kept', 4096), old.subarray((17 << 20) + 4096)])
    const previous = previousOf(old, chunkLengths(old))
    assert.ok((await batchesOf(bytes, previous, all(true))).some((b) => b.half === 2))
    // Thread ids count up with every worker this process starts: a probe's
    // tells how many started since the one before it.
    const before = await probeThreadId()
    for (let i = 0; i < 3; i++) {
      const batches = await batchesOf(bytes, previous, all(true))
      assertPlainCut(chunksIn(batches), bytes)
      assert.ok(batches.some((b) => b.half === 2))
    }
    assert.equal(await probeThreadId(), before + 1, 'no chunk worker was started for the three files')
  })

  it('gives the next file the right chunks when one is left mid-file', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      // Big enough that the second worker is still hashing when the first batch is in.
      const left = randomBytes(256 << 20)
      await writeFile(join(dir, 'left.bin'), left)
      await writeFile(join(dir, 'next.bin'), old)
      const [leftFh, nextFh] = [await open(join(dir, 'left.bin')), await open(join(dir, 'next.bin'))]
      try {
        const abandoned = chunksInWorkers(join(dir, 'left.bin'), leftFh, left.length, previousOf(left, chunkLengths(left)), all(true))
        assert.equal((await abandoned.next()).done, false)
        // As a commit does when a write fails under it; the next file follows at once.
        await abandoned.return(undefined)
        const next: ChunkBatch[] = []
        for await (const batch of chunksInWorkers(join(dir, 'next.bin'), nextFh, old.length, previousOf(old, chunkLengths(old)), all(true))) next.push(batch)
        assertPlainCut(chunksIn(next), old)
        assert.ok(next.some((b) => b.half === 2))
      } finally {
        await leftFh.close()
        await nextFh.close()
      }
    } finally {
      await cleanup()
    }
  })

  it('does not split a file without a previous version, one under the size, or one whose second half is mostly new', async () => {
    const plain = await batchesOf(old, undefined, all(true))
    assertPlainCut(chunksIn(plain), old)
    assert.ok(plain.every((b) => b.half === 1 && b.chunks.every((c) => c.bytes !== undefined)))
    const small = old.subarray(0, SPLIT_MIN_BYTES - 1)
    const batches = await batchesOf(small, previousOf(small, chunkLengths(small)), all(true))
    assertPlainCut(chunksIn(batches), small)
    assert.ok(batches.every((b) => b.half === 1))
    // Its first half kept, its second half other bytes: the second worker gives up, and the first cuts it all.
    const replaced = Buffer.concat([old.subarray(0, SIZE / 2), seededBytes('other half', SIZE / 2)])
    const whole = await batchesOf(replaced, previousOf(old, chunkLengths(old)), all(true))
    assertPlainCut(chunksIn(whole), replaced)
    assert.ok(whole.every((b) => b.half === 1))
  })
})
