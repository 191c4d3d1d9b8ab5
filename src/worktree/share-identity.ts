/**
 * The share folder's identity: its device and inode, taken when a repo
 * opens and checked around each scan and before each apply (repo.ts). A
 * folder moved away with another made at its path, or a disk unmounted
 * under its empty mount point, must not be read as every file deleted and
 * sent to every peer as such: a watch started on the old folder stops
 * committing instead, and goes on once the folder is back.
 */
import { stat } from 'node:fs/promises'
import { ShareGoneError } from '../errors.js'

/** Which folder a path named when it was looked at. */
export interface ShareIdentity {
  readonly dev: number
  readonly ino: number
}

/** The identity of the folder at `share` (through a symlink), or undefined when there is none. */
export async function shareIdentity(share: string): Promise<ShareIdentity | undefined> {
  try {
    const st = await stat(share)
    return st.isDirectory() ? { dev: st.dev, ino: st.ino } : undefined
  } catch {
    return undefined
  }
}

/** Throws ShareGoneError unless `share` is still the folder `was` names (no check when `was` is undefined). */
export async function checkShareIdentity(share: string, was: ShareIdentity | undefined): Promise<void> {
  if (was === undefined) return
  const now = await shareIdentity(share)
  if (now === undefined || now.dev !== was.dev || now.ino !== was.ino) throw new ShareGoneError(share)
}
