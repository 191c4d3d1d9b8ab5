/**
 * Worker thread half of big-file hashing: reads a file and cuts it with
 * FastCDC, while the main thread hashes the chunks, builds nodes and writes
 * the store. Cutting is the bigger half (about twice SHA-256's time), so
 * this shares the work between the two threads as evenly as a split at
 * the chunk can. Chunks travel back in packed batches (one transferred buffer
 * each) under a credit scheme: at most CREDITS batches are unacknowledged,
 * which bounds memory whatever the file size.
 *
 * Messages in:  { path } to start, 'ack' after each batch is consumed.
 * Messages out: { bytes, lengths } per batch, then { done: true }
 *               or { error: { code, message } }.
 */
import { open } from 'node:fs/promises'
import { parentPort } from 'node:worker_threads'
import { chunkStream } from '../chunk/fastcdc.js'
import { READ_NOFOLLOW } from './hash-file.js'

/** Batches of roughly this many bytes. */
export const BATCH_BYTES = 2 * 1024 * 1024
/** Unacknowledged batches allowed. */
export const CREDITS = 2

const port = parentPort!
let credits = CREDITS
let waiting: (() => void) | undefined

port.on('message', (m: unknown) => {
  if (m === 'ack') {
    credits++
    waiting?.()
    waiting = undefined
    return
  }
  void run((m as { path: string }).path)
})

async function run(path: string): Promise<void> {
  try {
    const fh = await open(path, READ_NOFOLLOW)
    try {
      let pending: Uint8Array[] = []
      let size = 0
      const send = async (): Promise<void> => {
        if (credits === 0) await new Promise<void>((resolve) => { waiting = resolve })
        credits--
        const bytes = new Uint8Array(size)
        const lengths: number[] = []
        let off = 0
        for (const c of pending) {
          bytes.set(c, off)
          off += c.length
          lengths.push(c.length)
        }
        port.postMessage({ bytes, lengths }, [bytes.buffer])
        pending = []
        size = 0
      }
      for await (const chunk of chunkStream(fh.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false }))) {
        pending.push(chunk)
        size += chunk.length
        if (size >= BATCH_BYTES) await send()
      }
      if (pending.length > 0) await send()
    } finally {
      await fh.close()
    }
    port.postMessage({ done: true })
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    port.postMessage({ error: { code: e.code, message: e.message } })
  }
}
