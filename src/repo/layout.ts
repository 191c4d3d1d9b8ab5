/**
 * Where a LEFT folder keeps things: `<root>/.left/` holds `config`, `store/`
 * (LevelDB) and `tmp/` (temp files, renamed into place); the share folder is
 * `<root>/share/` unless the config says otherwise. Nothing LEFT owns ever
 * lives inside the share folder.
 */
import { lstat, mkdir, rm, stat } from 'node:fs/promises'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { AlreadyInitializedError, ConfigError, NotARepoError } from '../errors.js'
import { type Config, checkKey, generateKey, generatePeerId, readConfig, writeConfig } from './config.js'

/** The name of LEFT's own directory beside the share folder. */
export const LEFT_DIR = '.left'

/** Resolved paths of one LEFT folder. */
export interface Layout {
  /** The directory holding `.left/`. */
  readonly root: string
  readonly leftDir: string
  readonly storeDir: string
  readonly tmpDir: string
  /** Absolute path of the share folder. */
  readonly share: string
}

/** Builds the layout for `root` and its config. */
export function layoutFor(root: string, config: Config): Layout {
  const leftDir = join(root, LEFT_DIR)
  return {
    root, leftDir,
    storeDir: join(leftDir, 'store'),
    tmpDir: join(leftDir, 'tmp'),
    share: resolve(root, config.share)
  }
}

/** Finds the nearest directory at or above `start` that holds `.left/`. */
export async function findRoot(start: string): Promise<string> {
  let dir = resolve(start)
  for (;;) {
    if (await isDir(join(dir, LEFT_DIR))) return dir
    const up = dirname(dir)
    if (up === dir) throw new NotARepoError(resolve(start))
    dir = up
  }
}

/** Options for `initLayout`. */
export interface InitOptions {
  /** Use this folder key instead of generating one. */
  readonly key?: string | undefined
  /** The share folder (default `share` beside `.left/`). */
  readonly share?: string | undefined
}

/** Creates `.left/` and the share folder under `root`; refuses if `.left/` exists. */
export async function initLayout(root: string, options: InitOptions = {}): Promise<{ layout: Layout; config: Config }> {
  root = resolve(root)
  const leftDir = join(root, LEFT_DIR)
  if (await exists(leftDir)) throw new AlreadyInitializedError(root)
  if (options.key !== undefined) checkKey(options.key)
  const shareAbs = resolve(root, options.share ?? 'share')
  const rel = relative(root, shareAbs)
  checkSharePlacement(root, shareAbs)
  if ((await exists(shareAbs)) && !(await isDir(shareAbs))) throw new ConfigError(`${shareAbs} exists and is not a directory`)
  const config: Config = {
    version: 1,
    key: options.key ?? generateKey(),
    peerId: generatePeerId(),
    share: isAbsolute(options.share ?? '') ? shareAbs : (rel.split(sep).join('/'))
  }
  try {
    // Owner only: the store holds every version of every file, the config holds the key.
    await mkdir(root, { recursive: true })
    await mkdir(leftDir, { mode: 0o700 })
    await mkdir(join(leftDir, 'tmp'), { recursive: true, mode: 0o700 })
    await mkdir(shareAbs, { recursive: true })
    await checkSameFilesystem(leftDir, shareAbs)
    await writeConfig(leftDir, config)
  } catch (err) {
    await rm(leftDir, { recursive: true, force: true })
    throw err
  }
  return { layout: layoutFor(root, config), config }
}

/** Opens the layout of the LEFT folder at or above `start`. */
export async function openLayout(start: string): Promise<{ layout: Layout; config: Config }> {
  const root = await findRoot(start)
  const config = await readConfig(join(root, LEFT_DIR))
  const layout = layoutFor(root, config)
  // The config may have been edited by hand since init: check it as init did,
  // before anything is read from or written to the share folder.
  checkSharePlacement(root, layout.share)
  await mkdir(layout.tmpDir, { recursive: true })
  if (!(await exists(layout.share))) throw new ConfigError(`the share folder ${layout.share} is missing`)
  if (!(await isDir(layout.share))) throw new ConfigError(`the share folder ${layout.share} is not a directory`)
  await checkSameFilesystem(layout.leftDir, layout.share)
  return { layout, config }
}

/**
 * The share folder may be neither the LEFT folder itself, nor inside
 * `.left/`, nor above it: a commit would then put LEFT's store and key into
 * history and send them to every peer.
 */
function checkSharePlacement(root: string, shareAbs: string): void {
  const rel = relative(root, shareAbs)
  if (rel === '' || rel === LEFT_DIR || rel.startsWith(LEFT_DIR + sep)) throw new ConfigError(`the share folder ${shareAbs} cannot be the LEFT folder itself or inside .left/`)
  if (relative(shareAbs, join(root, LEFT_DIR)).split(sep)[0] !== '..') throw new ConfigError(`the share folder ${shareAbs} cannot contain .left/`)
}

/**
 * Files are written under `.left/tmp` and renamed into the share folder, and
 * a rename cannot cross filesystems; refuse up front rather than fail in the
 * middle of a checkout or sync.
 */
async function checkSameFilesystem(leftDir: string, share: string): Promise<void> {
  const [a, b] = await Promise.all([stat(leftDir), stat(share)])
  if (a.dev !== b.dev) {
    throw new ConfigError(`the share folder ${share} is on another filesystem than ${leftDir}; LEFT needs both on one filesystem to replace files atomically`)
  }
}

/** True when something is at `p`; with `followLinks` false, a dangling link counts. */
export async function exists(p: string, followLinks = true): Promise<boolean> {
  try {
    await (followLinks ? stat(p) : lstat(p))
    return true
  } catch {
    return false
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory()
  } catch {
    return false
  }
}
