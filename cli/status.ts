/** How `left status` shows the running synchronizer and its peers, as text and as JSON. */
import type { NodeStatus, PeerStatus } from '../src/index.js'
import type { Io } from './io.js'
import { formatBytes, formatDate, formatSeconds, printable, transferRate, transferText } from './output.js'

/** The lines above the local changes: the daemon, then one per peer. */
export function printNodeStatus(io: Io, node: NodeStatus | undefined): void {
  if (node === undefined) {
    io.say("synchronizer: not running (start one with 'left watch')")
    return
  }
  const doing = node.activity.state === 'idle' ? (node.mode === 'watch' ? 'watching' : 'serving') : node.activity.state
  io.say(`synchronizer: ${doing} since ${formatDate(node.activity.since)} (left ${node.mode}, pid ${process.pid}${node.listen === undefined ? '' : `, listening on ${node.listen}`})`)
  if (node.paused.length > 0) io.say(`paused: ${node.paused.map((p) => (p === '*' ? 'all peers' : p)).join(', ')}`)
  if (node.peers.length === 0) io.say('peers: none yet')
  const now = Date.now()
  for (const p of node.peers) {
    const name = printable(p.id === undefined ? p.address : `${p.id} (${p.address})`)
    const paused = p.paused ? ', paused' : ''
    if (p.id === undefined) {
      io.say(`peer ${name}: offline, not reached yet${paused}`)
      continue
    }
    const seen = p.lastSeen === undefined ? '' : `, last seen ${formatSeconds((now - p.lastSeen) / 1000)} ago`
    const traffic = p.received + p.sent === 0 ? '' : `, received ${formatBytes(p.received)}, sent ${formatBytes(p.sent)}`
    io.say(`peer ${name}: ${p.online ? 'online' : 'offline'} since ${formatDate(p.since)}${seen}, ${p.sync}${paused}${traffic}`)
    if (p.transfer !== undefined) io.say(`  receiving ${transferText(p.transfer, (now - p.transfer.startedAt) / 1000)}`)
  }
}

/** The synchronizer as JSON: times as ISO strings, CIDs as text. */
export function nodeStatusJson(node: NodeStatus): Record<string, unknown> {
  const now = Date.now()
  return {
    pid: process.pid,
    mode: node.mode,
    state: node.activity.state,
    since: new Date(node.activity.since).toISOString(),
    startedAt: new Date(node.startedAt).toISOString(),
    listen: node.listen ?? null,
    head: node.head?.toString() ?? null,
    paused: node.paused,
    peers: node.peers.map((p) => ({
      id: p.id ?? null,
      address: p.address,
      online: p.online,
      since: new Date(p.since).toISOString(),
      lastSeen: p.lastSeen === undefined ? null : new Date(p.lastSeen).toISOString(),
      head: p.head?.toString() ?? null,
      sync: p.sync,
      paused: p.paused,
      received: p.received,
      sent: p.sent,
      transfer: transfer(p, now)
    }))
  }
}

function transfer(p: PeerStatus, now: number): Record<string, number | null> | null {
  const t = p.transfer
  if (t === undefined) return null
  const { rate, etaSeconds } = transferRate(t, (now - t.startedAt) / 1000)
  return { files: t.files, bytes: t.bytes, expectedBytes: t.expectedBytes, rate: Math.round(rate), etaSeconds }
}
