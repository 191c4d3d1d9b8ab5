/**
 * Peer addresses as users type them: `host`, `host:port`, `[v6]` or
 * `[v6]:port`. Pure string parsing (no DNS, no node:net: tls.ts is the only
 * module that touches sockets), so a typo fails fast with a UsageError
 * instead of as a confusing connect error later.
 */
import { UsageError } from '../errors.js'

/** The port LEFT listens on and connects to when none is given. */
export const DEFAULT_PORT = 24242

/** A parsed peer address. `host` never carries brackets. */
export interface PeerAddress {
  /** IPv4 dotted quad, IPv6 literal (without brackets) or DNS hostname. */
  readonly host: string
  /** TCP port, 1..65535 (0 only when `allowPortZero` was given). */
  readonly port: number
}

/** Options for `parseAddress`. */
export interface ParseAddressOptions {
  /** Port used when the text has none; DEFAULT_PORT unless given. */
  readonly defaultPort?: number
  /** Accept port 0 ("any free port"), which only makes sense for listening. */
  readonly allowPortZero?: boolean
}

/**
 * Parses `host[:port]`, `[v6]` or `[v6]:port`. Throws UsageError for anything
 * else, including bare IPv6 literals (their last group would read as a port).
 */
export function parseAddress(text: string, options: ParseAddressOptions = {}): PeerAddress {
  const bad = (why: string): UsageError => new UsageError(`invalid peer address ${JSON.stringify(text)}: ${why}`, { address: text })
  let host: string
  let portText: string | undefined
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close < 0) throw bad('missing "]"')
    host = text.slice(1, close)
    const rest = text.slice(close + 1)
    if (rest !== '' && !rest.startsWith(':')) throw bad('expected ":port" after "]"')
    portText = rest === '' ? undefined : rest.slice(1)
    if (!isIPv6(host)) throw bad('not an IPv6 address inside [ ]')
  } else {
    const colons = text.split(':').length - 1
    if (colons > 1) throw bad('write IPv6 addresses in brackets, like [::1]:24242')
    const i = text.indexOf(':')
    host = i < 0 ? text : text.slice(0, i)
    portText = i < 0 ? undefined : text.slice(i + 1)
    if (host === '') throw bad('missing host')
    // Anything that looks numeric must be a real IPv4 address, so that
    // "300.1.1.1" is an error rather than a hostname lookup.
    if (/^[0-9.]+$/.test(host) ? !isIPv4(host) : !isHostname(host)) throw bad('not an IPv4 address or hostname')
  }
  const port = portText === undefined ? options.defaultPort ?? DEFAULT_PORT : parsePort(portText)
  if (port === undefined || (port === 0 && options.allowPortZero !== true)) throw bad('port must be 1 to 65535')
  return { host, port }
}

/** The canonical text of an address: brackets around IPv6 literals. */
export function formatAddress(address: PeerAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}

function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined
  const n = Number(text)
  return n <= 65535 ? n : undefined
}

/** Four decimal octets 0..255 without leading zeros (which some tools read as octal). */
export function isIPv4(text: string): boolean {
  const parts = text.split('.')
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)
}

/** RFC 1123 hostname: dot-separated labels of letters, digits and inner hyphens. */
export function isHostname(text: string): boolean {
  if (text.length > 253) return false
  const name = text.endsWith('.') ? text.slice(0, -1) : text
  return name.length > 0 && name.split('.').every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l))
}

/** An IPv6 literal (RFC 4291 text forms, optional trailing IPv4, optional %zone). */
export function isIPv6(text: string): boolean {
  const pct = text.indexOf('%')
  if (pct >= 0 && !/^[A-Za-z0-9_.-]+$/.test(text.slice(pct + 1))) return false
  let addr = pct < 0 ? text : text.slice(0, pct)
  const lastColon = addr.lastIndexOf(':')
  if (lastColon < 0) return false
  const tail = addr.slice(lastColon + 1)
  if (tail.includes('.')) {
    // A trailing dotted quad stands for the last two 16-bit groups.
    if (!isIPv4(tail)) return false
    addr = addr.slice(0, lastColon + 1) + '0:0'
  }
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'))
  const hex = (g: string): boolean => /^[0-9A-Fa-f]{1,4}$/.test(g)
  const halves = addr.split('::')
  if (halves.length > 2) return false
  if (halves.length === 1) return groups(addr).length === 8 && groups(addr).every(hex)
  // "::" stands for at least one zero group.
  const all = [...groups(halves[0]!), ...groups(halves[1]!)]
  return all.length <= 7 && all.every(hex)
}
