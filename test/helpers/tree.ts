/** Describing a real folder on disk, so tests can compare two folders exactly. */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'

/** One path in a folder, with everything LEFT promises to keep. */
export interface PathInfo {
  readonly path: string
  readonly type: 'file' | 'dir' | 'link'
  readonly exec?: boolean
  readonly mtime?: number
  readonly sha256?: string
  readonly target?: string
}

async function hashFile(p: string): Promise<string> {
  const h = createHash('sha256')
  for await (const piece of createReadStream(p)) h.update(piece as Buffer)
  return h.digest('hex')
}

/** Every path under `root` (hidden ones included), sorted, with content hashes. */
export async function describeTree(root: string, opts: { mtimes?: boolean } = {}): Promise<PathInfo[]> {
  const out: PathInfo[] = []
  async function walk(abs: string, rel: string): Promise<void> {
    for (const name of (await readdir(abs)).sort()) {
      const a = join(abs, name)
      const r = rel === '' ? name : `${rel}/${name}`
      const st = await lstat(a)
      if (st.isDirectory()) {
        out.push({ path: r, type: 'dir' })
        await walk(a, r)
      } else if (st.isSymbolicLink()) {
        out.push({ path: r, type: 'link', target: await readlink(a) })
      } else {
        out.push({ path: r, type: 'file', exec: (st.mode & 0o100) !== 0, sha256: await hashFile(a), ...(opts.mtimes ? { mtime: Math.floor(st.mtimeMs) } : {}) })
      }
    }
  }
  await walk(root, '')
  return out
}
