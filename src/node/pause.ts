/**
 * Which peers a node does not sync with (`left pause`), pure. An entry is a
 * peer id, a peer address as `host:port`, a host (any port), or `*` for
 * every peer. The list is kept in `.left/config`, so it survives a restart.
 */

/** The entry that pauses every peer. */
export const ALL_PEERS = '*'

/** The list after pausing `target` (every peer when undefined). */
export function withPaused(entries: readonly string[], target: string | undefined): string[] {
  const entry = target ?? ALL_PEERS
  return entries.includes(entry) ? [...entries] : [...entries, entry].sort()
}

/** The list after resuming `target`, or every peer when undefined. */
export function withResumed(entries: readonly string[], target: string | undefined): string[] {
  return target === undefined ? [] : entries.filter((e) => e !== target)
}

/** True when the peer with id `peerId` (unknown before its hello), reached at any of `addresses`, is paused. */
export function isPausedPeer(entries: readonly string[], peerId: string | undefined, addresses: readonly string[]): boolean {
  const hosts = addresses.map((a) => a.slice(0, a.lastIndexOf(':')))
  return entries.some((e) => e === ALL_PEERS || e === peerId || addresses.includes(e) || hosts.includes(e))
}
