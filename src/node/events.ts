/**
 * The running node's events: commits made, peers coming and going, fetches,
 * files received, heads moved, conflicts kept, and notices from the layers
 * below. Every event gets an increasing id, so a reader that reconnects asks
 * for what it missed (as with Syncthing's event API); the last ones are kept
 * in memory for that. The log lines of `left watch` are these events, told in
 * words by `describeEvent` and shortened by `LogLines`; `left events`
 * streams them all.
 */

/** What happened. Paths are share-relative; ids and CIDs are strings. */
export type NodeEventBody =
  | { readonly type: 'commit'; readonly commit: string; readonly message: string; readonly added: number; readonly modified: number; readonly deleted: number }
  | { readonly type: 'peer-online'; readonly peer: string; readonly address: string }
  | { readonly type: 'peer-offline'; readonly peer: string }
  | { readonly type: 'fetch-started'; readonly peer: string; readonly head: string }
  | { readonly type: 'fetch-progress'; readonly peer: string; readonly files: number; readonly bytes: number; readonly expectedBytes: number }
  | { readonly type: 'fetch-finished'; readonly peer: string; readonly ok: boolean }
  | { readonly type: 'file-received'; readonly peer: string; readonly path: string; readonly size: number }
  | { readonly type: 'head-moved'; readonly peer: string; readonly mode: 'fast-forward' | 'merge'; readonly head: string }
  | { readonly type: 'conflict'; readonly path: string; readonly copyPath: string }
  | { readonly type: 'local-edit-kept'; readonly path: string }
  /** A path deleted on one side and edited on the other: the edit was kept. */
  | { readonly type: 'edit-kept'; readonly path: string }
  /** A file or link an incoming change removed from the folder. */
  | { readonly type: 'file-deleted'; readonly peer: string; readonly path: string }
  /** Many removed at once: one event instead of one per path (see DELETIONS_LISTED). */
  | { readonly type: 'files-deleted'; readonly peer: string; readonly count: number; readonly first: readonly string[] }
  | { readonly type: 'peer-paused'; readonly peer: string }
  | { readonly type: 'peer-resumed'; readonly peer: string }
  /** A line from the node or the layers below it: a refused connection, a retry, a failed commit. */
  | { readonly type: 'notice'; readonly message: string }

/** An event as recorded: its body, an id (1, 2, …) and the time (ms since the epoch). */
export type NodeEvent = NodeEventBody & { readonly id: number; readonly time: number }

/** The event kinds, for validation of `left events --type`. */
export const EVENT_TYPES: readonly NodeEventBody['type'][] = [
  'commit', 'peer-online', 'peer-offline', 'fetch-started', 'fetch-progress', 'fetch-finished',
  'file-received', 'head-moved', 'conflict', 'local-edit-kept', 'edit-kept', 'file-deleted', 'files-deleted',
  'peer-paused', 'peer-resumed', 'notice'
]

/** Up to this many deletions from one change are told one event each; more are told as one `files-deleted`. */
export const DELETIONS_LISTED = 20

/** The log line for an event, or undefined for those a log leaves out (fetch start, progress and end). */
export function describeEvent(e: NodeEventBody): string | undefined {
  switch (e.type) {
    case 'commit': return `committed ${e.commit}: ${e.added} added, ${e.modified} modified, ${e.deleted} deleted`
    case 'peer-online': return `peer ${e.peer} online (${e.address})`
    case 'peer-offline': return `peer ${e.peer} offline`
    case 'file-received': return `received ${e.path} (${e.size} bytes) from ${e.peer}`
    case 'head-moved': return `${e.mode === 'merge' ? 'merged' : 'fast-forwarded to'} ${e.head} from ${e.peer}`
    case 'conflict': return `conflict: kept both versions of ${e.path}; the other is ${e.copyPath}`
    case 'edit-kept': return `conflict: ${e.path} was deleted on one side and edited on the other; kept the edited version`
    case 'file-deleted': return `deleted ${e.path} (deleted by ${e.peer})`
    case 'files-deleted': return `deleted ${e.count} files (deleted by ${e.peer}), among them ${e.first.join(', ')}`
    case 'local-edit-kept': return `kept local edit of ${e.path}; it kept changing while the folder was updated, so it will be committed on top (the incoming version stays in history)`
    case 'peer-paused': return `paused syncing with ${e.peer}`
    case 'peer-resumed': return `resumed syncing with ${e.peer}`
    case 'notice': return e.message
    default: return undefined
  }
}

/** Up to this many files received with one change get a log line each; the rest are summed up in one. */
export const RECEIVED_LISTED = 20

/**
 * The log's lines for a stream of events: `describeEvent`'s, except that a
 * change bringing many files names the first RECEIVED_LISTED of each peer's
 * and sums up the rest in one line when HEAD moves (a first sync of a
 * million files printed a million lines). The events themselves are all
 * kept and streamed; only the words are shortened.
 */
export class LogLines {
  /** Per peer: files received since its last change went in, and the bytes of those not named. */
  private readonly received = new Map<string, { files: number; unlistedFiles: number; unlistedBytes: number }>()

  /** The lines `e` adds to the log (none, one, or a summary and one). */
  lines(e: NodeEventBody): string[] {
    if (e.type === 'file-received') {
      const r = this.received.get(e.peer) ?? { files: 0, unlistedFiles: 0, unlistedBytes: 0 }
      this.received.set(e.peer, r)
      if (++r.files <= RECEIVED_LISTED) return [describeEvent(e)!]
      r.unlistedFiles++
      r.unlistedBytes += e.size
      return []
    }
    // A change from a peer ends with its head moving; a new fetch or the
    // peer going away ends one that failed half way.
    const out = e.type === 'head-moved' || e.type === 'fetch-started' || e.type === 'peer-offline' ? this.summary(e.peer) : []
    const line = describeEvent(e)
    if (line !== undefined) out.push(line)
    return out
  }

  private summary(peer: string): string[] {
    const r = this.received.get(peer)
    this.received.delete(peer)
    if (r === undefined || r.unlistedFiles === 0) return []
    return [`received ${r.unlistedFiles} more file${r.unlistedFiles === 1 ? '' : 's'} (${r.unlistedBytes} bytes) from ${peer}`]
  }
}

/** The last events, and whoever listens for the next ones. */
export class EventLog {
  private readonly kept: NodeEvent[] = []
  private readonly listeners = new Set<(e: NodeEvent) => void>()
  private next = 1

  /** Keeps the last `capacity` events for readers that catch up. */
  constructor(private readonly capacity = 1000) {}

  /** Records `body` and tells every listener. A listener that throws is dropped. */
  emit(body: NodeEventBody): NodeEvent {
    const event: NodeEvent = { ...body, id: this.next++, time: Date.now() }
    this.kept.push(event)
    // Trimmed in bulk: a shift per event moved the whole window each time,
    // seconds over the 200,000 file-received events of one big sync.
    if (this.kept.length >= 2 * this.capacity) this.kept.splice(0, this.kept.length - this.capacity)
    for (const fn of this.listeners) {
      try {
        fn(event)
      } catch {
        this.listeners.delete(fn)
      }
    }
    return event
  }

  /** The kept events with an id above `id`, oldest first. */
  since(id: number): NodeEvent[] {
    // Up to twice `capacity` are held between trims; the window is the last `capacity`.
    const from = Math.max(id, this.lastId - this.capacity)
    return this.kept.filter((e) => e.id > from)
  }

  /** The id of the last event, 0 before the first. */
  get lastId(): number {
    return this.next - 1
  }

  /** Calls `fn` with every event from now on, until the returned function is called. */
  subscribe(fn: (e: NodeEvent) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }
}
