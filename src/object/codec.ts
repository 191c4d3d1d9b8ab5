/**
 * Canonical encoding of structure nodes with dag-cbor, and strict decoding.
 * Decoding validates everything a peer could get wrong (shape, types, names,
 * order, sizes) so no other module has to distrust a decoded object.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { InvalidObjectError } from '../errors.js'
import { DAG_CBOR, RAW, cidOf, isLeftCid } from './cid.js'
import { compareNames, isValidName } from './name.js'
import type { Commit, DirEntry, DirNode, DirShard, EntryKind, FileLink, FileNode, Node, ShardBucket } from './types.js'

/**
 * The object format this code reads and writes. Format 1 had no commit
 * generations and no sharded directories; its objects are refused.
 */
export const OBJECT_FORMAT = 2

/** Most links one file node may hold. */
export const MAX_FILE_LINKS = 1024
/** Deepest file tree accepted (1024^8 chunks is far beyond any file). */
export const MAX_FILE_HEIGHT = 8
/** Most parents a commit may name. */
export const MAX_PARENTS = 16
/** Longest commit message, in UTF-16 code units. */
export const MAX_MESSAGE = 64 * 1024
/** Most entries a directory node holds; a bigger directory, or bucket, is a shard. */
export const FLAT_DIR_MAX = 256
/** Buckets per shard: one hex digit of the name hash. */
export const SHARD_WIDTH = 16
/** Deepest shard: a sha2-256 digest has 64 nibbles. */
export const MAX_SHARD_DEPTH = 63

/** An encoded object ready to store: its CID and its exact bytes. */
export interface Block {
  readonly cid: CID
  readonly bytes: Uint8Array
}

/** Encodes a node canonically and returns its block. */
export function encodeNode(node: Node): Block {
  const bytes = dagCbor.encode(toData(node))
  return { cid: cidOf(DAG_CBOR, bytes), bytes }
}

function toData(node: Node): unknown {
  switch (node.type) {
    case 'dir':
      return {
        type: 'dir',
        entries: node.entries.map((e) => ({ name: e.name, kind: e.kind, cid: e.cid, size: e.size, mtime: e.mtime, exec: e.exec }))
      }
    case 'shard':
      return { type: 'shard', depth: node.depth, buckets: node.buckets.map((b) => [b.index, b.count, b.cid]) }
    case 'file':
      return { type: 'file', height: node.height, size: node.size, links: node.links.map((l) => [l.cid, l.size]) }
    case 'commit':
      return {
        type: 'commit', tree: node.tree, parents: [...node.parents], generation: node.generation,
        author: node.author, time: node.time, message: node.message
      }
  }
}

/** Decodes and validates any structure node; throws InvalidObjectError. */
export function decodeNode(bytes: Uint8Array): Node {
  let data: unknown
  try {
    data = dagCbor.decode(bytes)
  } catch (err) {
    throw new InvalidObjectError('object is not valid dag-cbor', err)
  }
  if (!isRecord(data)) throw new InvalidObjectError('object is not a map')
  switch (data['type']) {
    case 'dir': return decodeDir(data)
    case 'shard': return decodeShard(data)
    case 'file': return decodeFile(data)
    case 'commit': return commitFromData(data)
    default: throw new InvalidObjectError(`unknown object type ${JSON.stringify(String(data['type']))}`)
  }
}

/** Decodes bytes that must be a directory: a plain node or a shard. */
export function decodeDirNode(bytes: Uint8Array): DirNode | DirShard {
  const node = decodeNode(bytes)
  if (node.type !== 'dir' && node.type !== 'shard') throw new InvalidObjectError(`expected a directory, found ${node.type}`)
  return node
}

/** Decodes bytes that must be a file node. */
export function decodeFileNode(bytes: Uint8Array): FileNode {
  const node = decodeNode(bytes)
  if (node.type !== 'file') throw new InvalidObjectError(`expected a file node, found ${node.type}`)
  return node
}

/** Decodes bytes that must be a commit. */
export function decodeCommit(bytes: Uint8Array): Commit {
  const node = decodeNode(bytes)
  if (node.type !== 'commit') throw new InvalidObjectError(`expected a commit, found ${node.type}`)
  return node
}

function commitFromData(d: Record<string, unknown>): Commit {
  expectKeys(d, ['type', 'tree', 'parents', 'generation', 'author', 'time', 'message'])
  const tree = expectCid(d['tree'], 'commit tree', DAG_CBOR)
  const parentsRaw = d['parents']
  if (!Array.isArray(parentsRaw) || parentsRaw.length > MAX_PARENTS) throw new InvalidObjectError('commit parents must be a short list')
  const parents = parentsRaw.map((p) => expectCid(p, 'commit parent', DAG_CBOR))
  for (let i = 1; i < parents.length; i++) {
    if (compareBytes(parents[i - 1]!.bytes, parents[i]!.bytes) >= 0) throw new InvalidObjectError('commit parents must be sorted and distinct')
  }
  const generation = expectUint(d['generation'], 'commit generation')
  // The exact value needs the parents (history/ancestry.ts checks it); the
  // bounds need only the commit.
  if (parents.length === 0 ? generation !== 1 : generation < 2) throw new InvalidObjectError('commit generation does not fit its parents')
  const author = d['author']
  if (typeof author !== 'string' || author.length === 0 || author.length > 128) throw new InvalidObjectError('commit author must be a short string')
  const time = expectUint(d['time'], 'commit time')
  const message = d['message']
  if (typeof message !== 'string' || message.length > MAX_MESSAGE) throw new InvalidObjectError('commit message must be a string')
  return { type: 'commit', tree, parents, generation, author, time, message }
}

function decodeShard(d: Record<string, unknown>): DirShard {
  expectKeys(d, ['type', 'depth', 'buckets'])
  const depth = expectUint(d['depth'], 'shard depth')
  if (depth > MAX_SHARD_DEPTH) throw new InvalidObjectError('shard too deep')
  const raw = d['buckets']
  if (!Array.isArray(raw) || raw.length < 1 || raw.length > SHARD_WIDTH) throw new InvalidObjectError(`shard must have 1..${SHARD_WIDTH} buckets`)
  let total = 0
  const buckets: ShardBucket[] = []
  for (const item of raw) {
    if (!Array.isArray(item) || item.length !== 3) throw new InvalidObjectError('shard bucket must be [index, count, cid]')
    const index = expectUint(item[0], 'bucket index')
    const count = expectUint(item[1], 'bucket count')
    const cid = expectCid(item[2], 'bucket', DAG_CBOR)
    if (index >= SHARD_WIDTH) throw new InvalidObjectError('bucket index out of range')
    const prev = buckets[buckets.length - 1]
    if (prev !== undefined && prev.index >= index) throw new InvalidObjectError('shard buckets must be sorted and distinct')
    if (count === 0) throw new InvalidObjectError('shard buckets must not be empty')
    total += count
    buckets.push({ index, count, cid })
  }
  // A directory that fits one node must be one: the layout is canonical.
  if (total <= FLAT_DIR_MAX || !Number.isSafeInteger(total)) throw new InvalidObjectError('shard holds too few entries')
  return { type: 'shard', depth, buckets }
}

function decodeDir(d: Record<string, unknown>): DirNode {
  expectKeys(d, ['type', 'entries'])
  const raw = d['entries']
  if (!Array.isArray(raw)) throw new InvalidObjectError('directory entries must be a list')
  if (raw.length > FLAT_DIR_MAX) throw new InvalidObjectError(`a directory node holds at most ${FLAT_DIR_MAX} entries`)
  const entries: DirEntry[] = []
  for (const item of raw) {
    if (!isRecord(item)) throw new InvalidObjectError('directory entry must be a map')
    expectKeys(item, ['name', 'kind', 'cid', 'size', 'mtime', 'exec'])
    const name = item['name']
    if (!isValidName(name)) throw new InvalidObjectError(`invalid entry name ${JSON.stringify(String(name))}`)
    const kind = item['kind']
    if (kind !== 'file' && kind !== 'dir' && kind !== 'link') throw new InvalidObjectError(`invalid entry kind for ${name}`)
    const cid = expectCid(item['cid'], `entry ${name}`, codecFor(kind))
    const size = expectUint(item['size'], `size of ${name}`)
    const mtime = expectUint(item['mtime'], `mtime of ${name}`)
    const exec = item['exec']
    if (typeof exec !== 'boolean') throw new InvalidObjectError(`exec of ${name} must be a boolean`)
    if (kind !== 'file' && (exec || mtime !== 0)) throw new InvalidObjectError(`only files carry exec and mtime (${name})`)
    if (kind === 'dir' && size !== 0) throw new InvalidObjectError(`directory ${name} must have size 0`)
    const prev = entries[entries.length - 1]
    if (prev !== undefined && compareNames(prev.name, name) >= 0) throw new InvalidObjectError('directory entries must be sorted and distinct')
    entries.push({ name, kind, cid, size, mtime, exec })
  }
  return { type: 'dir', entries }
}

function decodeFile(d: Record<string, unknown>): FileNode {
  expectKeys(d, ['type', 'height', 'size', 'links'])
  const height = expectUint(d['height'], 'file height')
  if (height > MAX_FILE_HEIGHT) throw new InvalidObjectError('file tree too deep')
  const size = expectUint(d['size'], 'file size')
  const raw = d['links']
  if (!Array.isArray(raw) || raw.length < 1 || raw.length > MAX_FILE_LINKS) {
    throw new InvalidObjectError(`file node must have 1..${MAX_FILE_LINKS} links`)
  }
  let total = 0
  const links: FileLink[] = raw.map((item) => {
    if (!Array.isArray(item) || item.length !== 2) throw new InvalidObjectError('file link must be [cid, size]')
    const cid = expectCid(item[0], 'file link', height === 0 ? RAW : DAG_CBOR)
    const linkSize = expectUint(item[1], 'file link size')
    total += linkSize
    return { cid, size: linkSize }
  })
  if (total !== size) throw new InvalidObjectError('file node size is not the sum of its links')
  return { type: 'file', height, size, links }
}

/** The codec a directory entry's CID must have (a file may be a single raw chunk). */
function codecFor(kind: EntryKind): number | undefined {
  return kind === 'dir' ? DAG_CBOR : kind === 'link' ? RAW : undefined
}

function expectCid(value: unknown, what: string, codec?: number): CID {
  if (!isLeftCid(value)) throw new InvalidObjectError(`${what} is not a valid CID`)
  if (codec !== undefined && value.code !== codec) throw new InvalidObjectError(`${what} has the wrong codec`)
  return value
}

function expectUint(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new InvalidObjectError(`${what} must be a non-negative integer`)
  return value
}

function expectKeys(d: Record<string, unknown>, keys: readonly string[]): void {
  const actual = Object.keys(d)
  if (actual.length !== keys.length || !keys.every((k) => k in d)) {
    throw new InvalidObjectError(`object must have exactly the fields ${keys.join(', ')}`)
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array) && !isLeftCid(value)
}

/** Lexicographic byte order, used for sorting parents canonically. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}
