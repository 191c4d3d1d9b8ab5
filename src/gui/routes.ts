/**
 * The page's API, pure: each request becomes the `left` command lines that
 * answer it, run by the daemon through the same definitions as the CLI
 * (docs/gui.md lists the routes). So the page can do nothing a `left`
 * command cannot, and says nothing `--json` does not. Every value taken from
 * a request is checked here and placed after `--` or an option, so none can
 * be read as an option.
 */

/** What the page asked: its method, path and query, and its JSON body for a POST. */
export interface ApiRequest {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly body: Readonly<Record<string, unknown>>
}

/** How to answer a request: command lines run in order (the first failure ends it), or a stream of events. */
export type ApiPlan =
  | { readonly kind: 'run'; readonly steps: ReadonlyArray<readonly string[]> }
  | { readonly kind: 'events'; readonly argv: readonly string[] }
  | { readonly kind: 'error'; readonly status: number; readonly message: string }

/** The most commits one history request lists. */
export const MAX_LOG = 500

const COMMIT_ID = /^[a-z0-9]{4,100}$/
const PEER = /^[\w.:[\]-]{1,300}$/

function notFound(): ApiPlan {
  return { kind: 'error', status: 404, message: 'no such API route' }
}

function bad(message: string): ApiPlan {
  return { kind: 'error', status: 400, message }
}

function run(...steps: Array<readonly string[]>): ApiPlan {
  return { kind: 'run', steps }
}

/** A share-relative path from a request: text without NUL, not absolute, or undefined when it is not one. */
function sharePath(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.includes('\0') || value.startsWith('/') || value.length > 4096) return undefined
  return value
}

/** The commands that answer `req` (see docs/gui.md). */
export function planRequest(req: ApiRequest): ApiPlan {
  const get = req.method === 'GET'
  const post = req.method === 'POST'
  switch (req.path) {
    case '/api/status':
      return get ? run(['status', '--json']) : notFound()
    case '/api/log': {
      if (!get) return notFound()
      const n = Number(req.query.get('n') ?? '50')
      if (!Number.isSafeInteger(n) || n < 1 || n > MAX_LOG) return bad(`n must be a whole number from 1 to ${MAX_LOG}`)
      return run(['log', '--json', '-n', String(n)])
    }
    case '/api/commit': {
      if (!get) return notFound()
      const id = req.query.get('id') ?? ''
      if (!COMMIT_ID.test(id)) return bad('id must be a commit id')
      return run(['log', '--json', '-n', '1', '--name-status', id, '--'])
    }
    case '/api/files': {
      if (!get) return notFound()
      const path = sharePath(req.query.get('path') ?? '')
      if (path === undefined) return bad('path must be a path inside the share folder')
      return run(path === '' ? ['ls', '--json'] : ['ls', '--json', '--', path])
    }
    case '/api/versions': {
      if (!get) return notFound()
      const path = sharePath(req.query.get('path') ?? '')
      if (path === undefined || path === '') return bad('path must name a file inside the share folder')
      return run(['versions', '--json', '--', path])
    }
    case '/api/events': {
      if (!get) return notFound()
      const since = Number(req.query.get('since') ?? '0')
      if (!Number.isSafeInteger(since) || since < 0) return bad('since must be an event id')
      return { kind: 'events', argv: ['events', '--json', '--since', String(since)] }
    }
    case '/api/restore': {
      if (!post) return notFound()
      const path = sharePath(req.body['path'])
      const commit = req.body['commit']
      if (path === undefined || path === '') return bad('path must name a file inside the share folder')
      if (typeof commit !== 'string' || !COMMIT_ID.test(commit)) return bad('commit must be a commit id')
      return run(['restore', '-s', commit, '--', path], ['commit', '--json', '-m', `restore ${path} from ${commit.slice(0, 15)}`])
    }
    case '/api/conflicts':
      return get ? run(['conflicts', '--json']) : notFound()
    case '/api/resolve': {
      if (!post) return notFound()
      const copy = sharePath(req.body['copy'])
      const keep = req.body['keep']
      if (copy === undefined || copy === '') return bad('copy must name a conflict copy inside the share folder')
      if (keep !== 'this' && keep !== 'that') return bad('keep must be "this" or "that"')
      return run(['resolve', '--keep', keep, '--', copy], ['commit', '--json', '-m', `resolve the conflict of ${copy}: keep ${keep === 'this' ? 'this version' : 'that one'}`])
    }
    case '/api/pause':
    case '/api/resume': {
      if (!post) return notFound()
      const peer = req.body['peer']
      if (peer !== undefined && (typeof peer !== 'string' || !PEER.test(peer))) return bad('peer must be a peer id or address')
      const verb = req.path === '/api/pause' ? 'pause' : 'resume'
      return run(peer === undefined ? [verb] : [verb, '--', peer])
    }
    default:
      return notFound()
  }
}
