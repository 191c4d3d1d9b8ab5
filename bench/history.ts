/**
 * History benchmark (issue 10): what a new peer downloads when the folder's
 * history holds large files that are gone. LEFT's `left sync` against
 * `git clone` (every version) and `git clone --filter=blob:none` (git's
 * partial clone: history, and the blobs of the checkout only), all over the
 * same history, in the same run. Then the space `left forget` + `left gc`
 * return on the origin.
 */
import { randomBytes } from 'node:crypto'
import { cp, mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { type Block, RAW, cidOf, decodeCommit, encodeNode } from '../src/object/index.js'
import { Store } from '../src/store/index.js'
import { MiB, Peer, type Timed, dirSize, fmt, left, printTable, receivedBytes, scratch, step, timed, writeRandomFile } from './lib.js'

const LEFT_PORT = 24402
const LONG_PORT = 24403
/** History lengths compared by the long-history case. */
const HISTORY_LENGTHS = [10, 100_000]
/** Versions of the big file the history holds; the folder keeps none of them. */
const BIG_VERSIONS = 5
const BIG_SIZE = 64 * MiB
/** The folder as it is at the end: 64 files of 64 KiB. */
const SMALL_FILES = 64

/**
 * Makes the history in `share` with `commit`: BIG_VERSIONS big files come and
 * go, small files change. LEFT and git get the same shape and sizes (the
 * random bytes differ, which changes nothing for either).
 */
async function makeHistory(share: string, commit: (message: string) => Promise<unknown>): Promise<void> {
  await mkdir(join(share, 'small'), { recursive: true })
  for (let v = 0; v < BIG_VERSIONS; v++) {
    for (let i = 0; i < SMALL_FILES; i++) {
      // Random, so that neither tool's compression hides what it transfers.
      if (v === 0 || i % 8 === v) await writeFile(join(share, 'small', `f${i}.bin`), randomBytes(64 * 1024))
    }
    await rm(join(share, `big-${v - 1}.bin`), { force: true })
    await writeRandomFile(join(share, `big-${v}.bin`), BIG_SIZE)
    await commit(`version ${v}`)
  }
  await rm(join(share, `big-${BIG_VERSIONS - 1}.bin`))
  await commit('the big files are gone')
}

/** Runs the history benchmark and prints its table. */
export async function benchHistory(base: string, tools: { git: boolean }): Promise<void> {
  const rows: string[][] = []
  const history = `${BIG_VERSIONS} versions of a ${BIG_SIZE / MiB} MiB random file, all deleted; ${SMALL_FILES} files of 64 KiB (${(SMALL_FILES * 64) / 1024} MiB) at the end`

  step('history: LEFT origin')
  const a = await scratch(base, 'history-a')
  const b = await scratch(base, 'history-b')
  await left(a, ['init'])
  const key = (await left(a, ['key'])).stdout.trim()
  await left(b, ['init', '--key', key])
  await makeHistory(join(a, 'share'), (m) => left(a, ['commit', '-m', m]))

  step('history: new LEFT peer')
  const server = new Peer(a, ['serve', '--listen', `127.0.0.1:${LEFT_PORT}`])
  let leftSync: Timed
  try {
    await server.waitFor(/serving/)
    leftSync = await left(b, ['sync', `127.0.0.1:${LEFT_PORT}`])
  } finally {
    await server.stop()
  }
  const leftBytes = receivedBytes(leftSync)
  const leftStore = await dirSize(join(b, '.left'))
  rows.push(['LEFT `left sync` (new peer)', fmt.mb(leftBytes), fmt.mb(leftStore), fmt.s(leftSync.seconds), 'every commit, tree and file size; content of the current files only'])

  if (tools.git) {
    step('history: git origin')
    const g = await scratch(base, 'history-git')
    await timed('git', ['init', '-q', g])
    const git = (args: string[]): Promise<Timed> => timed('git', ['-C', g, '-c', 'user.name=bench', '-c', 'user.email=bench@example.com', ...args])
    await git(['config', 'uploadpack.allowFilter', 'true'])
    await makeHistory(g, async (m) => { await git(['add', '-A']); await git(['commit', '-q', '-m', m]) })
    await git(['gc', '-q'])
    for (const [label, extra, note] of [
      ['git clone', [] as string[], 'every version of every file'],
      ['git clone --filter=blob:none', ['--filter=blob:none'], 'history, then the blobs of the checkout']
    ] as const) {
      step(`history: ${label}`)
      const dest = join(base, `history-clone-${extra.length}`)
      await rm(dest, { recursive: true, force: true })
      // --no-local: a real pack transfer, as over the network, not hard links.
      const t = await timed('git', ['clone', '-q', '--no-local', ...extra, `file://${g}`, dest])
      const pack = await dirSize(join(dest, '.git'))
      rows.push([`\`${label}\``, fmt.mb(pack), fmt.mb(pack), fmt.s(t.seconds), `${note}; bytes are its .git after the clone (the pack it received)`])
      await rm(dest, { recursive: true, force: true })
    }
  }
  printTable(`A new peer joins: ${history}`, ['tool', 'received', 'store after', 'time', 'what it fetched'], rows)

  step('history: left forget + gc on the origin')
  const before = await dirSize(join(a, '.left'))
  const forget = await left(a, ['forget', '--keep-last', '1'])
  const gc = await left(a, ['gc'])
  const after = await dirSize(join(a, '.left'))
  printTable('Retention on the origin: `left forget --keep-last 1`, then `left gc`', ['store before', 'store after', 'forget', 'gc'], [
    [fmt.mb(before), fmt.mb(after), fmt.s(forget.seconds), fmt.s(gc.seconds)]
  ])
}

/**
 * Appends `count` commits to the HEAD of the LEFT folder `dir`, straight
 * into its store (a commit per CLI call would take hours): each changes
 * `log.txt`, as a watch peer's small commits do. Leaves the share folder
 * matching the new HEAD.
 */
async function growHistory(dir: string, count: number): Promise<void> {
  const config = JSON.parse(await readFile(join(dir, '.left', 'config'), 'utf8')) as { peerId: string }
  const store = await Store.open(join(dir, '.left', 'store'))
  let text = ''
  // The folder's file gets this mtime too, so the next commit sees no change.
  const mtime = Math.floor(Date.now() / 1000) * 1000
  try {
    let parent = (await store.getRef('HEAD'))!
    let { generation, time } = decodeCommit((await store.get(parent))!)
    for (let done = 0; done < count;) {
      const blocks: Block[] = []
      const commits: CID[] = []
      for (const end = Math.min(count, done + 1000); done < end; done++) {
        text = `version ${done}\n`
        const bytes = Buffer.from(text)
        const chunk = { cid: cidOf(RAW, bytes), bytes }
        const tree = encodeNode({ type: 'dir', entries: [{ name: 'log.txt', kind: 'file', cid: chunk.cid, size: bytes.length, mtime, exec: false }] })
        const commit = encodeNode({ type: 'commit', tree: tree.cid, parents: [parent], generation: ++generation, author: config.peerId, time: ++time, message: `update log.txt (${done})` })
        blocks.push(chunk, tree, commit)
        commits.push(commit.cid)
        parent = commit.cid
      }
      await store.write({ blocks, commits, refs: { HEAD: parent } })
    }
  } finally {
    await store.close()
  }
  await writeFile(join(dir, 'share', 'log.txt'), text)
  await utimes(join(dir, 'share', 'log.txt'), mtime / 1000, mtime / 1000)
}

/**
 * Issue 10: syncing a new head costs the same with 100,000 commits of
 * history as with 10. Two peers share a history of n commits; the origin
 * makes one more and the other takes it with `left sync` (a fast-forward),
 * then both make one each and sync again (a merge, which needs the merge
 * base). Generation numbers stop both walks at the merge base.
 */
export async function benchLongHistory(base: string): Promise<void> {
  const rows: string[][] = []
  for (const n of HISTORY_LENGTHS) {
    step(`history: ${n} commits`)
    const a = await scratch(base, 'long-a')
    const b = await scratch(base, 'long-b')
    await left(a, ['init'])
    const key = (await left(a, ['key'])).stdout.trim()
    await left(b, ['init', '--key', key])
    await writeFile(join(a, 'share', 'log.txt'), 'first\n')
    await left(a, ['commit', '-m', 'first'])
    await growHistory(a, n - 1)
    // The other peer starts with the same history: a copy of the store.
    await rm(join(b, '.left', 'store'), { recursive: true })
    await cp(join(a, '.left', 'store'), join(b, '.left', 'store'), { recursive: true })
    await cp(join(a, 'share', 'log.txt'), join(b, 'share', 'log.txt'), { preserveTimestamps: true })
    await writeFile(join(a, 'share', 'new.txt'), 'new on a\n')
    await left(a, ['commit', '-m', 'one more'])
    const server = new Peer(a, ['serve', '--listen', `127.0.0.1:${LONG_PORT}`])
    try {
      await server.waitFor(/serving/)
      const ff = await left(b, ['sync', `127.0.0.1:${LONG_PORT}`])
      await writeFile(join(a, 'share', 'a.txt'), 'edited on a\n')
      await left(a, ['commit', '-m', 'on a'])
      await writeFile(join(b, 'share', 'b.txt'), 'edited on b\n')
      await left(b, ['commit', '-m', 'on b'])
      const merge = await left(b, ['sync', `127.0.0.1:${LONG_PORT}`])
      const log = await left(b, ['log', '--oneline', '-n', '1'])
      const modes = `${/fast-forwarded to/.test(ff.stdout + ff.stderr) ? 'fast-forward' : 'NOT A FAST-FORWARD'}, then ${log.stdout.includes('merge') ? 'merge' : 'NOT MERGED'}`
      rows.push([n.toLocaleString('en-US'), fmt.s(ff.seconds), fmt.kb(receivedBytes(ff)), fmt.s(merge.seconds), fmt.kb(receivedBytes(merge)), modes])
    } finally {
      await server.stop()
    }
    await rm(a, { recursive: true, force: true })
    await rm(b, { recursive: true, force: true })
  }
  printTable('Syncing a new head on top of a long history (`left sync`, whole process)', ['commits of history', 'fast-forward', 'received', 'merge', 'received', 'what happened'], rows)
}
