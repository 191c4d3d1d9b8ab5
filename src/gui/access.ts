/**
 * Who may use the status page, pure: the token check, the Host check against
 * DNS rebinding, the Origin check against cross-site requests, and the
 * headers every response carries. The HTTP server (server.ts) asks these
 * before it reads anything of the folder, so a refused request learns
 * nothing: not a name, not a count.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'

/** A fresh page token: 24 random bytes, base64url (32 characters). */
export function generateGuiToken(): string {
  return randomBytes(24).toString('base64url')
}

/** The header scripts send the token in; a page of another origin cannot set it without a CORS grant, which is never given. */
export const TOKEN_HEADER = 'x-left-token'

/**
 * The cookie the page's token rides in after the first visit. It is named
 * after the port, because cookies are shared by every port of a host: two
 * folders' pages on one machine keep theirs apart.
 */
export function tokenCookieName(port: number): string {
  return `left-token-${port}`
}

/** Compares in constant time, so the answer's timing tells nothing of the token. */
export function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined) return false
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * Whether an API request may go on: it carries the token in the header (a
 * script, or any client), or it comes from the page itself with the token's
 * cookie. The cookie counts only when the browser says the request is
 * same-origin (`Sec-Fetch-Site`), because a cookie also rides along on
 * requests that other sites' pages, and pages on other ports of this host,
 * make; the cookie is HttpOnly, so no page's script can read it.
 */
export function apiAllowed(headers: { readonly [name: string]: string | string[] | undefined }, cookie: string, token: string): boolean {
  const header = headers[TOKEN_HEADER]
  if (typeof header === 'string') return tokenMatches(header, token)
  const cookieHeader = headers['cookie']
  return headers['sec-fetch-site'] === 'same-origin' && tokenMatches(cookieValue(typeof cookieHeader === 'string' ? cookieHeader : undefined, cookie), token)
}

/** The value of cookie `name` in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
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
