/**
 * Reading a range of an open file, which one `read` call may return in
 * parts: materialize reads the old version's ranges this way, the chunk
 * threads the chunks they must store after all, and the chunk worker each
 * batch it cuts.
 */
import type { FileHandle } from 'node:fs/promises'

/** Fills `into` from `fh` at `at`; undefined when the file ends first. */
export async function readRange<T extends Uint8Array>(fh: FileHandle, at: number, into: T): Promise<T | undefined> {
  return (await readUpTo(fh, at, into)) < into.length ? undefined : into
}

/** Reads `length` bytes from `fh` at `at` into `into` at `offset` (by default, to fill it), or fewer when the file ends first; returns how many. */
export async function readUpTo(fh: FileHandle, at: number, into: Uint8Array, offset = 0, length = into.length - offset): Promise<number> {
  let done = 0
  while (done < length) {
    const { bytesRead } = await fh.read(into, offset + done, length - done, at + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}
