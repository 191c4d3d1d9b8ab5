/**
 * Who may use the status page, pure: the token check and its proof, the
 * Host check against DNS rebinding, the Origin check against cross-site
 * requests, and the headers every response carries. The HTTP server
 * (server.ts) asks these before it reads anything of the folder, so a
 * refused request learns nothing: not a name, not a count.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'

/** A fresh page token: 24 random bytes, base64url (32 characters). */
export function generateGuiToken(): string {
  return randomBytes(24).toString('base64url')
}

/**
 * The header every API request carries the token in. A page of another
 * origin cannot set it without a CORS grant, which is never given, and
 * unlike a cookie no browser adds it by itself: so there is nothing for
 * another site, or another port of this host, to ride on (CSRF).
 */
export const TOKEN_HEADER = 'x-left-token'

/** Compares in constant time, so the answer's timing tells nothing of the token. */
export function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined) return false
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** A nonce `left gui` may send: 16 to 128 hex digits. */
export const NONCE = /^[0-9a-f]{16,128}$/

/**
 * Proof that a server holds `token`, without showing it: HMAC-SHA256 of a
 * nonce the asker chose. `left gui` asks before it opens the page, so it
 * never sends the token to whatever else listens on the port.
 */
export function tokenProof(token: string, nonce: string): string {
  return createHmac('sha256', token).update(`left-gui-proof:${nonce}`).digest('hex')
}

/**
 * Whether a request's Host header names this server by address, as
 * Syncthing's GUI checks it: an IP literal, `localhost`, or the host it was
 * told to bind. A DNS name that an attacker points at 127.0.0.1 (rebinding)
 * arrives with that name as Host, and is refused.
 */
export function hostAllowed(host: string | undefined, bindHost: string): boolean {
  if (host === undefined || host === '') return false
  let name = host
  if (name.startsWith('[')) {
    const end = name.indexOf(']')
    if (end < 0) return false
    name = name.slice(1, end)
  } else {
    const colon = name.lastIndexOf(':')
    if (colon >= 0) name = name.slice(0, colon)
  }
  name = name.toLowerCase()
  return isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost') || name === bindHost.toLowerCase()
}

/**
 * Whether a request's Origin, when it has one, is this server itself.
 * Browsers send Origin on every cross-site request and on same-site
 * non-GET ones; a request with no Origin came from no page (curl, a script).
 */
export function originAllowed(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true
  if (host === undefined) return false
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false
  }
  return url.protocol === 'http:' && url.host === new URL(`http://${host}`).host
}

/** Whether an address is loopback, where only this machine's users can reach it. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/**
 * Headers on every response. The page loads only its own files (no inline
 * script or style, nothing from elsewhere), cannot be framed, and is never
 * cached, since it shows a folder's private state.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store'
}
