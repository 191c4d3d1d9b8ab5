/**
 * `.left/config`: the folder key, this peer's id, where the share folder is,
 * what `left watch` remembers (listen address and peers), and the retention
 * policy it applies. JSON, written atomically (temp file + rename) with mode
 * 0600 because it holds the key.
 */
import { randomBytes } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError } from '../errors.js'
import { POLICY_FIELDS, type RetentionPolicy, checkPolicy } from '../history/retention.js'

/** The contents of `.left/config`. */
export interface Config {
  readonly version: 1
  /** The folder key: every peer of the folder holds the same one. Secret. */
  readonly key: string
  /** This peer's id: the author of its commits. */
  readonly peerId: string
  /** The share folder, relative to the directory holding `.left/`, or absolute. */
  readonly share: string
  /** `left watch --listen`, remembered. */
  readonly listen?: string
  /** `left watch --peers`, remembered. */
  readonly peers?: readonly string[]
  /** `left pause`: peer ids and addresses not to sync with; `*` means every peer. */
  readonly paused?: readonly string[]
  /** The peer id found at each remembered address, learnt when a dial reaches it. */
  readonly knownPeers?: Readonly<Record<string, string>>
  /** `left forget --remember`: the retention policy `left watch` applies by itself. */
  readonly retention?: RetentionPolicy
  /** `left watch --gui`, remembered: where the status page listens (`host:port`), or `off`. */
  readonly gui?: string
  /** The status page's secret, made the first time it is needed. */
  readonly guiToken?: string
}

/** Shortest folder key accepted: a key is a password for the whole folder. */
export const MIN_KEY_LENGTH = 16

/** A fresh random folder key: 32 bytes, base64url. */
export function generateKey(): string {
  return randomBytes(32).toString('base64url')
}

/** A fresh random peer id: 8 bytes, hex. */
export function generatePeerId(): string {
  return randomBytes(8).toString('hex')
}

/** Throws ConfigError unless `key` is usable as a folder key. */
export function checkKey(key: string): void {
  if (key.length < MIN_KEY_LENGTH || key.length > 1024 || !/^[\x21-\x7e]+$/.test(key)) {
    throw new ConfigError(`a folder key must be ${MIN_KEY_LENGTH} to 1024 printable ASCII characters without spaces`)
  }
}

/** Reads and validates `<leftDir>/config`. */
export async function readConfig(leftDir: string): Promise<Config> {
  let text: string
  try {
    text = await readFile(join(leftDir, 'config'), 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read ${join(leftDir, 'config')}`, err)
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`${join(leftDir, 'config')} is not valid JSON`, err)
  }
  const c = data as Partial<Config>
  if (typeof c !== 'object' || c === null || c.version !== 1 || typeof c.key !== 'string' ||
    typeof c.peerId !== 'string' || typeof c.share !== 'string' ||
    (c.listen !== undefined && typeof c.listen !== 'string') ||
    (c.gui !== undefined && typeof c.gui !== 'string') ||
    (c.guiToken !== undefined && (typeof c.guiToken !== 'string' || !/^[\w-]{16,256}$/.test(c.guiToken))) ||
    (c.peers !== undefined && !(Array.isArray(c.peers) && c.peers.every((p) => typeof p === 'string'))) ||
    (c.paused !== undefined && !(Array.isArray(c.paused) && c.paused.every((p) => typeof p === 'string'))) ||
    (c.knownPeers !== undefined && !(typeof c.knownPeers === 'object' && c.knownPeers !== null && !Array.isArray(c.knownPeers) &&
      Object.values(c.knownPeers).every((p) => typeof p === 'string')))) {
    throw new ConfigError(`${join(leftDir, 'config')} is damaged: missing or mistyped fields`)
  }
  if (c.retention !== undefined) checkRetention(c.retention, join(leftDir, 'config'))
  checkKey(c.key)
  if (!/^[\x21-\x7e]{1,128}$/.test(c.peerId)) throw new ConfigError(`${join(leftDir, 'config')} is damaged: peerId must be 1 to 128 printable ASCII characters`)
  return c as Config
}

/** Throws ConfigError unless `value` is a retention policy (see checkPolicy). */
function checkRetention(value: unknown, path: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${path} is damaged: retention must be an object with the fields ${POLICY_FIELDS.join(', ')}`)
  }
  try {
    checkPolicy(value as RetentionPolicy)
  } catch (err) {
    throw new ConfigError(`${path}: retention: ${err instanceof Error ? err.message : String(err)}`, err)
  }
}

/** Writes `<leftDir>/config` atomically, readable only by its owner. */
export async function writeConfig(leftDir: string, config: Config): Promise<void> {
  const tmp = join(leftDir, 'tmp', `config.${randomBytes(4).toString('hex')}.tmp`)
  await writeFile(tmp, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 })
  await rename(tmp, join(leftDir, 'config'))
}
