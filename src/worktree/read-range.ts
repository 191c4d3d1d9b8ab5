/**
 * Reading an exact range of an open file, which one `read` call may return
 * in parts: materialize reads the old version's ranges this way, and the
 * chunk threads the chunks they must store after all.
 */
import type { FileHandle } from 'node:fs/promises'

/** Fills `into` from `fh` at `at`; undefined when the file ends first. */
export async function readRange<T extends Uint8Array>(fh: FileHandle, at: number, into: T): Promise<T | undefined> {
  for (let done = 0; done < into.length;) {
    const { bytesRead } = await fh.read(into, done, into.length - done, at + done)
    if (bytesRead === 0) return undefined
    done += bytesRead
  }
  return into
}
