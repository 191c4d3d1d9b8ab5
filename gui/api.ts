/**
 * The page's side of the daemon's API (docs/gui.md): JSON requests that
 * carry the token in a header, and the event stream read with fetch, since
 * EventSource cannot send headers. The token comes from the cookie the
 * server set when the page was opened with `left gui`'s address.
 */

/** The page's token, from the cookie named after this port. */
function token(): string {
  const port = location.port === '' ? '80' : location.port
  const name = `left-token-${port}=`
  for (const part of document.cookie.split(';')) {
    const p = part.trim()
    if (p.startsWith(name)) return p.slice(name.length)
  }
  return ''
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
    headers: { 'x-left-token': token(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? null : JSON.stringify(body)
  })
  const value = await res.json() as { error?: { code: string; message: string } }
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

/**
 * Reads the event stream from after `since` until it ends or fails;
 * resolves then, with the last id seen, so the caller reconnects from there.
 */
export async function readEvents(since: number, onEvent: (e: DaemonEvent) => void, onOpen: () => void): Promise<number> {
  let last = since
  const res = await fetch(`/api/events?since=${since}`, { headers: { 'x-left-token': token() } })
  if (!res.ok || res.body === null) throw new ApiError('LEFT_GUI_REQUEST', `HTTP ${res.status}`, res.status)
  onOpen()
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let pending = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return last
    pending += value
    let end
    while ((end = pending.indexOf('\n\n')) >= 0) {
      const block = pending.slice(0, end)
      pending = pending.slice(end + 2)
      const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n')
      if (data === '') continue
      const event = JSON.parse(data) as DaemonEvent
      last = Math.max(last, event.id)
      onEvent(event)
    }
  }
}
