/**
 * The page's side of the daemon's API (docs/gui.md): JSON requests, and the
 * event stream, each with the token in a header. The token arrives in the
 * address's fragment (`#token=…`, which the browser never sends to a
 * server), and is kept in this tab's sessionStorage, which belongs to this
 * origin alone: no other site, nor another port of this host, can read it.
 */

const KEY = 'left-token'

/** Moves a token from the address into this tab's storage, and out of the address bar. */
export function takeToken(): void {
  const m = /^#token=([\w-]+)$/.exec(location.hash)
  if (m === null) return
  sessionStorage.setItem(KEY, m[1]!)
  history.replaceState(null, '', location.pathname)
}

/** The token this tab holds, or undefined. */
export function token(): string | undefined {
  return sessionStorage.getItem(KEY) ?? undefined
}

/** A failed request, with the daemon's error code and message. */
export class ApiError extends Error {
  constructor(readonly code: string, message: string, readonly status: number) {
    super(message)
  }
}

async function request(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(path, {
    method,
    headers: { 'x-left-token': token() ?? '', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? null : JSON.stringify(body)
  })
  // The daemon answers in JSON, except the plain words of a 503 (stopping) or a 500.
  const value = await res.json().catch(() => ({ error: { code: 'LEFT_GUI_REQUEST', message: `HTTP ${res.status}` } })) as { error?: { code: string; message: string } }
  if (!res.ok || value.error !== undefined) {
    throw new ApiError(value.error?.code ?? 'LEFT_GUI_REQUEST', value.error?.message ?? `HTTP ${res.status}`, res.status)
  }
  return value
}

/** GET `path` (with `query`) and its JSON answer. */
export function get<T>(path: string, query: Record<string, string> = {}): Promise<T> {
  const q = new URLSearchParams(query).toString()
  return request('GET', q === '' ? path : `${path}?${q}`) as Promise<T>
}

/** POST `body` to `path`, and its JSON answer. */
export function post<T>(path: string, body: Record<string, unknown>): Promise<T> {
  return request('POST', path, body) as Promise<T>
}

/** One daemon event, as `left events --json` prints it. */
export interface DaemonEvent {
  readonly id: number
  readonly type: string
  readonly time: string
  readonly [field: string]: unknown
}

/** The server sends a keepalive every 15 s; this long without a byte means the stream is dead (a sleep, a network change). */
const STREAM_SILENCE_MS = 40_000

/**
 * Reads the event stream from after `since` until it ends, fails or falls
 * silent, calling `onEvent` for each event. The caller keeps the last id it
 * was given and reconnects from there.
 */
export async function readEvents(since: number, on: {
  /** The daemon's run; false ends the stream (the caller's `since` belongs to another run). */
  run(id: string): boolean
  event(e: DaemonEvent): void
}): Promise<void> {
  const abort = new AbortController()
  let silence = setTimeout(() => abort.abort(), STREAM_SILENCE_MS)
  try {
    const res = await fetch(`/api/events?since=${since}`, { signal: abort.signal, headers: { 'x-left-token': token() ?? '' } })
    if (!res.ok || res.body === null) throw new ApiError('LEFT_GUI_REQUEST', `HTTP ${res.status}`, res.status)
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    let pending = ''
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return
        clearTimeout(silence)
        silence = setTimeout(() => abort.abort(), STREAM_SILENCE_MS)
        pending += value
        let end
        while ((end = pending.indexOf('\n\n')) >= 0) {
          const block = pending.slice(0, end)
          pending = pending.slice(end + 2)
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n')
          if (data === '') continue
          if (block.split('\n').includes('event: run')) {
            if (!on.run((JSON.parse(data) as { run: string }).run)) return
          } else {
            on.event(JSON.parse(data) as DaemonEvent)
          }
        }
      }
    } finally {
      void reader.cancel().catch(() => {})
    }
  } finally {
    clearTimeout(silence)
  }
}
