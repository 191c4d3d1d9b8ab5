/**
 * The status page: this peer, its peers and their transfers, the history,
 * a file browser with every version of a file, conflicts, and the daemon's warnings.
 * Everything comes from the daemon's API (the same `--json` the CLI prints)
 * and is refreshed as its event stream says things changed, without a reload.
 */
import { ApiError, type DaemonEvent, get, post, readEvents, takeToken, token } from './api.js'
import { ago, bytes, counts, eta, fill, firstLine, h, when } from './view.js'

interface Transfer { files: number; bytes: number; expectedBytes: number; rate: number; etaSeconds: number | null }
interface Peer {
  id: string | null; address: string; online: boolean; since: string; lastSeen: string | null
  head: string | null; sync: string; paused: boolean; received: number; sent: number; transfer: Transfer | null
}
interface Synchronizer { mode: string; state: string; since: string; startedAt: string; listen: string | null; head: string | null; paused: string[]; peers: Peer[] }
interface Status { folder: { share: string; peer: string }; synchronizer: Synchronizer | null; changes: unknown[] }
interface Commit {
  id: string; short: string; parents: string[]; time: string; author: string; message: string
  added: number; modified: number; deleted: number
  files?: Array<{ path: string; change: string; kind: string }>
}
interface Entry { name: string; path: string; kind: 'file' | 'dir' | 'link'; size: number | null; mtime: string | null }
interface Side { kind: string; size: number; mtime: string | null }
interface Conflict { path: string; copy: string; peer: string; time: string; this: Side | null; that: Side }
interface Version { id: string; short: string; time: string; author: string; kind: string | null; size: number | null; here: boolean | null }

const $ = (id: string): HTMLElement => document.getElementById(id)!

let status: Status | undefined
let history: Commit[] = []
let folder = ''
let openCommit: string | undefined
let shownFile: string | undefined

/** Shows a failed action where people look: in the warnings list, at the top. */
function report(err: unknown): void {
  addNotice(new Date().toISOString(), err instanceof Error ? err.message : String(err), 'error')
}

function addNotice(time: string, message: string, level: 'warning' | 'error' = 'warning'): void {
  const list = $('notices')
  if (list.querySelector('.muted') !== null) fill(list)
  list.prepend(h('li', { class: level }, h('time', { datetime: time }, when(time)), ' ', message))
  while (list.children.length > 50) list.lastElementChild!.remove()
}

// ---- this peer and its peers

function renderStatus(): void {
  if (status === undefined) return
  const s = status.synchronizer
  fill($('folder'), status.folder.share)
  const head = history[0]
  const idle = s?.paused.includes('*') === true ? 'paused' : s?.mode === 'watch' ? 'watching' : 'serving'
  const state = s === null ? 'not running' : s.state === 'idle' ? idle : s.state
  const row = (term: string, ...value: Array<Node | string>): Node[] => [h('dt', {}, term), h('dd', {}, ...value)]
  fill($('self'),
    ...row('Folder', status.folder.share),
    ...row('Peer id', h('code', {}, status.folder.peer)),
    ...row('State', h('span', { class: `state state-${state}`, 'data-testid': 'state' }, state)),
    ...row('Head', head === undefined ? 'no commits yet' : h('span', {}, h('code', {}, head.short), ' ', h('span', { 'data-testid': 'head-message' }, firstLine(head.message)))),
    ...row('Listening on', s?.listen ?? '—'),
    ...row('Local changes', status.changes.length === 0 ? 'none' : `${status.changes.length} not yet committed`))
  renderPeers(s)
}

function renderPeers(s: Synchronizer | null): void {
  const box = $('peers')
  if (s === null) return fill(box, h('p', { class: 'muted' }, "The synchronizer is not running: start it with 'left watch'."))
  const allPaused = s.paused.includes('*')
  const controls = h('p', { class: 'actions' },
    h('button', { type: 'button', onclick: () => void act(allPaused ? '/api/resume' : '/api/pause', {}) }, allPaused ? 'Resume all' : 'Pause all'))
  if (s.peers.length === 0) return fill(box, controls, h('p', { class: 'muted' }, 'No peers yet.'))
  const cards = s.peers.map((p) => {
    const name = p.id ?? p.address
    const online = p.id !== null && p.online
    const lines: Node[] = [
      h('h3', {}, h('code', {}, name), p.id === null ? '' : h('span', { class: 'muted' }, ` ${p.address}`)),
      h('p', {},
        h('span', { class: online ? 'badge online' : 'badge offline', 'data-testid': 'peer-state' }, online ? 'online' : 'offline'),
        p.id === null ? ' not reached yet' : ` since ${when(p.since)}`,
        p.lastSeen === null ? '' : `, last seen ${ago(p.lastSeen)}`,
        p.id === null ? '' : h('span', { class: `sync sync-${p.sync.replace(' ', '-')}`, 'data-testid': 'peer-sync' }, `, ${p.sync}`),
        p.paused ? h('span', { class: 'badge paused' }, 'paused') : ''),
      ...(p.received + p.sent === 0 ? [] : [h('p', { class: 'muted', 'data-testid': 'peer-traffic' }, `${bytes(p.received)} received, ${bytes(p.sent)} sent`)])
    ]
    const t = p.transfer
    if (t !== null) {
      lines.push(h('p', { class: 'transfer' },
        `receiving ${t.files} files${t.expectedBytes > 0 ? ` (~${bytes(t.expectedBytes)})` : ''}, ${bytes(t.bytes)} received, ${bytes(t.rate)}/s`,
        t.etaSeconds === null ? '' : `, ETA ${eta(t.etaSeconds)}`))
      if (t.expectedBytes > 0) lines.push(h('progress', { max: String(t.expectedBytes), value: String(Math.min(t.bytes, t.expectedBytes)), 'aria-label': `transfer from ${name}` }))
    }
    const target = p.id ?? p.address
    lines.push(h('p', { class: 'actions' }, p.paused
      ? h('button', { type: 'button', disabled: allPaused, onclick: () => void act('/api/resume', { peer: target }), 'aria-label': `Resume syncing with ${name}` }, 'Resume')
      : h('button', { type: 'button', onclick: () => void act('/api/pause', { peer: target }), 'aria-label': `Pause syncing with ${name}` }, 'Pause')))
    return h('article', { class: 'peer', 'data-peer': name }, ...lines)
  })
  fill(box, controls, ...cards)
}

/** Asks the daemon to do something, then reads afresh what it changes: the status, or everything. */
async function act(path: string, body: Record<string, unknown>, refresh: () => Promise<void> = refreshStatus): Promise<void> {
  try {
    await post(path, body)
  } catch (err) {
    report(err)
  }
  await refresh()
}

// ---- history

function renderHistory(): void {
  fill($('history'), ...history.map((c) => {
    const merge = c.parents.length > 1
    const open = openCommit === c.id
    const item = h('li', { class: merge ? 'commit merge' : 'commit' },
      h('button', { type: 'button', class: 'link', 'aria-expanded': open ? 'true' : 'false', onclick: () => void toggleCommit(c.id) },
        h('code', {}, c.short), ' ', h('span', { class: 'message' }, firstLine(c.message))),
      h('p', { class: 'muted' }, `${when(c.time)} · by ${c.author} · ${merge ? 'merge · ' : ''}${counts(c)}`))
    if (open && c.files !== undefined) {
      item.append(h('ul', { class: 'changes' }, ...c.files.map((f) =>
        h('li', {}, h('span', { class: `change change-${f.change}` }, f.change === 'added' ? 'A' : f.change === 'deleted' ? 'D' : 'M'), ' ', f.path + (f.kind === 'dir' ? '/' : '')))))
      if (c.files.length === 0) item.append(h('p', { class: 'muted' }, 'no files changed'))
    }
    return item
  }))
}

async function toggleCommit(id: string): Promise<void> {
  if (openCommit === id) {
    openCommit = undefined
    return renderHistory()
  }
  openCommit = id
  try {
    const [detail] = await get<Commit[]>('/api/commit', { id })
    const i = history.findIndex((c) => c.id === id)
    if (detail !== undefined && i >= 0) history[i] = { ...history[i]!, files: detail.files ?? [] }
  } catch (err) {
    report(err)
  }
  renderHistory()
}

// ---- files and their versions

async function showFolder(path: string): Promise<void> {
  folder = path
  let entries: Entry[] = []
  try {
    entries = await get<Entry[]>('/api/files', { path })
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'LEFT_PATH_NOT_FOUND')) report(err)
    if (path !== '') return showFolder(path.split('/').slice(0, -1).join('/'))
  }
  const parts = path === '' ? [] : path.split('/')
  fill($('crumbs'),
    h('button', { type: 'button', class: 'link', onclick: () => void showFolder('') }, 'share'),
    ...parts.flatMap((p, i) => [' / ', h('button', { type: 'button', class: 'link', onclick: () => void showFolder(parts.slice(0, i + 1).join('/')) }, p)]))
  fill($('files'), ...entries.map((e) => h('li', { class: `entry ${e.kind}` },
    e.kind === 'dir'
      ? h('button', { type: 'button', class: 'link', onclick: () => void showFolder(e.path) }, `${e.name}/`)
      : h('button', { type: 'button', class: 'link', onclick: () => void showVersions(e.path), 'aria-label': `Versions of ${e.name}` }, e.name),
    e.size === null ? '' : h('span', { class: 'muted' }, ` ${bytes(e.size)}`),
    e.name.includes('.sync-conflict-') ? h('span', { class: 'badge conflict' }, 'conflict copy') : '')))
  if (entries.length === 0) $('files').append(h('li', { class: 'muted' }, 'empty'))
}

async function showVersions(path: string): Promise<void> {
  shownFile = path
  let versions: Version[] = []
  try {
    versions = await get<Version[]>('/api/versions', { path })
  } catch (err) {
    report(err)
  }
  fill($('versions'),
    h('h3', {}, `Versions of ${path}`),
    h('ol', { class: 'versions' }, ...versions.map((v, i) => h('li', {},
      h('code', {}, v.short), ` ${when(v.time)} · `,
      v.kind === null ? 'deleted' : v.size === null ? v.kind : bytes(v.size),
      ` · by ${v.author}`,
      v.kind === null ? '' : i === 0 ? h('span', { class: 'muted' }, ' (current)')
        : h('button', { type: 'button', onclick: () => void act('/api/restore', { path, commit: v.short }, refreshAll), 'aria-label': `Restore ${path} from ${v.short}` }, 'Restore')))))
}

// ---- conflicts

function side(title: string, v: Side | null, peer: string | undefined): HTMLElement {
  return h('div', { class: 'side' },
    h('h4', {}, title),
    v === null ? h('p', {}, 'deleted') : h('p', {}, v.kind === 'link' ? 'a link' : bytes(v.size), v.mtime === null ? '' : ` · ${when(v.mtime)}`),
    peer === undefined ? '' : h('p', { class: 'muted' }, `by ${peer}`))
}

async function refreshConflicts(): Promise<void> {
  let found: Conflict[]
  try {
    found = await get<Conflict[]>('/api/conflicts')
  } catch (err) {
    return report(err)
  }
  if (found.length === 0) return fill($('conflicts'), h('p', { class: 'muted' }, 'none'))
  const items = await Promise.all(found.map(async (c) => {
    // The peer of this version: the author of the last commit that changed it.
    const versions = c.this === null ? [] : await get<Version[]>('/api/versions', { path: c.path }).catch(() => [])
    return h('article', { class: 'conflict-item', 'data-copy': c.copy },
      h('h3', {}, c.path),
      h('div', { class: 'sides' }, side('This version', c.this, versions[0]?.author), side(`That version (${c.copy.split('/').pop()})`, c.that, c.peer)),
      h('p', { class: 'actions' },
        h('button', { type: 'button', onclick: () => void act('/api/resolve', { copy: c.copy, keep: 'this' }, refreshAll), 'aria-label': `Keep this version of ${c.path}` }, 'Keep this'),
        h('button', { type: 'button', onclick: () => void act('/api/resolve', { copy: c.copy, keep: 'that' }, refreshAll), 'aria-label': `Keep that version of ${c.path}` }, 'Keep that')))
  }))
  fill($('conflicts'), ...items)
}

// ---- keeping up with the daemon

async function refreshStatus(): Promise<void> {
  try {
    status = await get<Status>('/api/status')
    renderStatus()
  } catch (err) {
    report(err)
  }
}

async function refreshHistory(): Promise<void> {
  try {
    const fresh = await get<Commit[]>('/api/log', { n: '30' })
    const details = new Map(history.filter((c) => c.files !== undefined).map((c) => [c.id, c.files]))
    history = fresh.map((c) => ({ ...c, files: details.get(c.id) }))
    renderHistory()
  } catch (err) {
    report(err)
  }
}

async function refreshAll(): Promise<void> {
  await refreshHistory()
  await refreshStatus()
  await showFolder(folder)
  if (shownFile !== undefined) await showVersions(shownFile)
  await refreshConflicts()
}

/** Runs `fn` at most once per `ms`, and once more after a burst. */
function throttled(fn: () => Promise<void>, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined
  return () => {
    timer ??= setTimeout(() => {
      timer = undefined
      void fn()
    }, ms)
  }
}

const soonAll = throttled(refreshAll, 100)
const soonStatus = throttled(refreshStatus, 250)
// Reading the status scans the folder for local changes, so a transfer's progress refreshes it less often.
const laterStatus = throttled(refreshStatus, 2000)

function onEvent(e: DaemonEvent): void {
  switch (e.type) {
    case 'commit':
    case 'head-moved':
    case 'file-deleted':
    case 'files-deleted':
      return soonAll()
    case 'notice':
      return addNotice(e.time, String(e['message']))
    case 'conflict':
      addNotice(e.time, `conflict: kept both versions of ${String(e['path'])}; the other is ${String(e['copyPath'])}`)
      return soonAll()
    case 'edit-kept':
    case 'local-edit-kept':
      addNotice(e.time, `kept the edited version of ${String(e['path'])}`)
      return soonAll()
    case 'fetch-progress':
      return laterStatus()
    default:
      return soonStatus()
  }
}

async function follow(): Promise<void> {
  let since = 0
  let run: string | undefined
  let restart = false
  for (;;) {
    restart = false
    try {
      await readEvents(since, {
        run: (id) => {
          // Event ids count from 1 in each run of the daemon: a new run is read from its start.
          const again = run !== undefined
          const fresh = id !== run
          run = id
          if (fresh && since > 0) {
            since = 0
            restart = true
            return false
          }
          fill($('connection'), h('span', { class: 'badge online' }, 'live'))
          // What changed while the stream was down is read afresh.
          if (again) void refreshAll()
          return true
        },
        event: (e) => {
          since = Math.max(since, e.id)
          onEvent(e)
        }
      })
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return needsToken()
      // The daemon is gone or restarting; try again.
    }
    if (restart) continue
    fill($('connection'), h('span', { class: 'badge offline' }, 'not connected to the synchronizer; retrying…'))
    await new Promise((r) => setTimeout(r, 1000))
  }
}

/** Without its token the page shows nothing of the folder, only how to get the address. */
function needsToken(): void {
  fill($('connection'))
  fill($('folder'))
  fill(document.querySelector('main')!, h('p', { class: 'needs-token', role: 'alert' }, "This page needs its token: run 'left gui' in the folder for its address."))
}

async function start(): Promise<void> {
  takeToken()
  if (token() === undefined) return needsToken()
  try {
    // A cheap request to check the token: the status would scan the folder, and refreshAll reads it next.
    await get('/api/log', { n: '1' })
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return needsToken()
  }
  await refreshAll()
  // "Last seen 3 s ago" ages as the page stays open. The status itself is
  // read again only when an event says it changed: reading it scans the folder.
  setInterval(renderStatus, 5000)
  // The stream starts with the events the daemon kept, so warnings logged before the page opened show too.
  void follow()
}

void start()
