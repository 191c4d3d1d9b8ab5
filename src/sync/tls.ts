/**
 * The secure transport: TLS 1.3 from node:tls, authenticated by the folder
 * key through an external pre-shared key (RFC 8446 §2.2). Both sides derive
 * the same PSK from the key with HKDF-SHA256, so only holders of the key
 * complete a handshake: a peer with another key fails at the binder check,
 * before either side has sent a single application byte. There are no
 * certificates; OpenSSL's psk_dhe_ke mode still runs an (EC)DHE exchange, so
 * recorded traffic stays secret even if the key later leaks.
 *
 * This is the only module that opens sockets. Everything above it sees a
 * Session (session.ts) whose hello has been exchanged.
 */
import { hkdfSync } from 'node:crypto'
import type { AddressInfo, Socket } from 'node:net'
import * as tls from 'node:tls'
import { AuthError, LeftError, ListenError, PeerUnreachableError, TimeoutError, errorMessage } from '../errors.js'
import { type PeerAddress, formatAddress } from './address.js'
import { type Session, type SessionOptions, openSession } from './session.js'

/** The PSK identity sent in the ClientHello; it names the derivation, not the folder. */
export const PSK_IDENTITY = 'left/1'

/** Only SHA-256 suites: an external PSK is bound to one hash, and HKDF here makes 32 bytes. */
const TLS_OPTIONS = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256'
} as const satisfies tls.SecureContextOptions

/** TCP keepalive idle time: lets the kernel notice a peer that vanished without closing. */
const KEEPALIVE_MS = 15_000

/** Most simultaneous inbound connections; more are refused until some close. */
export const MAX_CONNECTIONS = 64

/**
 * Most simultaneous inbound connections from one IP address. A TCP
 * connection needs no key, so without this cap one host could fill every
 * slot with idle sockets and lock honest peers out; an honest peer needs one
 * or two.
 */
export const MAX_CONNECTIONS_PER_ADDRESS = 8

/** A client must finish its TLS handshake within this long (or the session timeout, if shorter). */
export const HANDSHAKE_TIMEOUT_MS = 10_000

/** Derives the 32-byte TLS PSK from a folder key (HKDF-SHA256, fixed salt and info). */
export function derivePsk(key: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(key, 'utf8'), 'left-folder-key', 'left/1 tls13 external psk', 32))
}

/** Session settings shared by `listen` and `connect`; the label is set per connection. */
export type TransportSessionOptions = Omit<SessionOptions, 'label'>

/** Options for `listen`. */
export interface ListenOptions {
  readonly address: PeerAddress
  readonly key: string
  readonly session: TransportSessionOptions
  /** Called with each session whose hello has been exchanged. */
  readonly onSession: (session: Session, remote: string) => void
  /** One line per rejected or failed inbound connection. */
  readonly log?: (line: string) => void
}

/** A listening socket. */
export interface Listener {
  /** Where it actually listens (the port is real even when 0 was asked for). */
  readonly address: PeerAddress
  /**
   * Stops accepting. Sessions should be closed by their owner first; any
   * connection still open after a short grace is cut.
   */
  close(): Promise<void>
}

/**
 * Listens for peers on `address`. Resolves once bound; rejects with
 * ListenError when the address cannot be bound (in use, not local).
 */
export async function listen(options: ListenOptions): Promise<Listener> {
  const psk = derivePsk(options.key)
  const log = options.log ?? (() => {})
  const timeoutMs = options.session.timeoutMs
  const server = tls.createServer({
    ...TLS_OPTIONS,
    pskCallback: (_socket, identity) => (identity === PSK_IDENTITY ? psk : null),
    handshakeTimeout: Math.min(timeoutMs ?? HANDSHAKE_TIMEOUT_MS, HANDSHAKE_TIMEOUT_MS)
  })
  server.maxConnections = MAX_CONNECTIONS
  const perAddress = new Map<string, number>()
  server.on('connection', (raw: Socket) => {
    const ip = raw.remoteAddress ?? '?'
    const count = perAddress.get(ip) ?? 0
    if (count >= MAX_CONNECTIONS_PER_ADDRESS) {
      // Said once each time the address reaches the cap, not per socket.
      if (count === MAX_CONNECTIONS_PER_ADDRESS) log(`refused connections from ${ip}: it already has ${MAX_CONNECTIONS_PER_ADDRESS} open`)
      perAddress.set(ip, MAX_CONNECTIONS_PER_ADDRESS + 1)
      raw.destroy()
      return
    }
    perAddress.set(ip, count + 1)
    raw.once('close', () => {
      const left = Math.min(perAddress.get(ip) ?? 1, MAX_CONNECTIONS_PER_ADDRESS) - 1
      if (left <= 0) perAddress.delete(ip)
      else perAddress.set(ip, left)
    })
  })
  server.on('tlsClientError', (err, socket) => {
    // A connection refused by the per-address cap above: already said.
    if (socket.remoteAddress === undefined && (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
      socket.destroy()
      return
    }
    const who = socket.remoteAddress === undefined ? 'a peer' : formatAddress({ host: socket.remoteAddress, port: socket.remotePort ?? 0 })
    log(isKeyMismatch(err) ? `refused ${who}: it does not hold this folder's key` : `TLS handshake with ${who} failed: ${tlsReason(err)}`)
    // Node reports a handshake timeout here but leaves the socket open; a
    // client that never speaks would otherwise hold one of MAX_CONNECTIONS forever.
    socket.destroy()
  })
  const sockets = new Set<tls.TLSSocket>()
  server.on('secureConnection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    const remote = formatAddress({ host: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 })
    socket.setNoDelay(true)
    socket.setKeepAlive(true, KEEPALIVE_MS)
    openSession(socket, { ...options.session, label: remote })
      .then((session) => options.onSession(session, remote))
      .catch((err: unknown) => log(`session with ${remote} failed to start: ${describe(err)}`))
  })
  await new Promise<void>((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException): void => reject(new ListenError(formatAddress(options.address), err))
    server.once('error', fail)
    server.listen(options.address.port, options.address.host, () => {
      server.off('error', fail)
      resolve()
    })
  })
  server.on('error', (err) => log(`listener error: ${err.message}`))
  const bound = server.address() as AddressInfo
  return {
    address: { host: options.address.host, port: bound.port },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      setTimeout(() => { for (const s of sockets) s.destroy() }, 2_000).unref()
    })
  }
}

/** Options for `connect`. */
export interface ConnectOptions {
  readonly address: PeerAddress
  readonly key: string
  readonly session: TransportSessionOptions
  /** Give up on TCP + TLS + hello after this many ms (default: the session timeout, else 30 s). */
  readonly connectTimeoutMs?: number
  /** Gives up at once when aborted before the hello exchange completes. */
  readonly signal?: AbortSignal
}

/**
 * Connects to a peer and exchanges hellos. Rejects with PeerUnreachableError
 * (nothing listens, no route), AuthError (the peer holds another key) or
 * TimeoutError.
 */
export async function connect(options: ConnectOptions): Promise<Session> {
  const label = formatAddress(options.address)
  const psk = derivePsk(options.key)
  const limit = options.connectTimeoutMs ?? options.session.timeoutMs ?? 30_000
  const socket = tls.connect({
    ...TLS_OPTIONS,
    host: options.address.host,
    port: options.address.port,
    // LEFT peers prove themselves with the folder key only. A server that
    // presents a certificate instead (even a CA-signed one) is not a peer.
    checkServerIdentity: () => new Error('the server presented a certificate; LEFT peers authenticate with the folder key'),
    pskCallback: () => ({ psk, identity: PSK_IDENTITY })
  })
  socket.setNoDelay(true)
  socket.setKeepAlive(true, KEEPALIVE_MS)
  const abort = (): void => { socket.destroy() }
  if (options.signal?.aborted === true) abort()
  options.signal?.addEventListener('abort', abort, { once: true })
  let timer: NodeJS.Timeout | undefined
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`connecting to ${label}`)), limit)
      socket.once('secureConnect', () => {
        // Belt and braces: a handshake that used a certificate did not prove the key.
        if (Object.keys(socket.getPeerCertificate()).length > 0) reject(new AuthError(label, undefined, CERTIFICATE_REASON))
        else resolve()
      })
      socket.once('error', (err) => reject(connectError(label, err)))
      // A server that hangs up during the handshake without an alert.
      socket.once('close', () => reject(new PeerUnreachableError(label, new Error('connection closed during the TLS handshake'))))
    })
    clearTimeout(timer)
    // openSession has its own hello timeout (the session's stall timeout).
    return await openSession(socket, { ...options.session, label })
  } catch (err) {
    socket.destroy()
    throw err instanceof LeftError ? err : connectError(label, err as Error)
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', abort)
  }
}

/** OpenSSL's words for "the other side computed another PSK binder or alert". */
function isKeyMismatch(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code ?? ''
  return code === 'ERR_SSL_BINDER_DOES_NOT_VERIFY' || code.startsWith('ERR_SSL_SSLV3_ALERT_ILLEGAL_PARAMETER') ||
    code === 'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR' || code === 'ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC'
}

/** A certificate check failed: the server authenticated with a certificate, which no LEFT peer does. */
function isCertificateError(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code ?? ''
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code) || /presented a certificate/.test(err.message)
}

const CERTIFICATE_REASON = 'presented a certificate instead of proving the folder key: it is not a LEFT peer of this folder'

function connectError(label: string, err: Error): LeftError {
  if (isKeyMismatch(err)) return new AuthError(label, err)
  if (isCertificateError(err)) return new AuthError(label, err, CERTIFICATE_REASON)
  return new PeerUnreachableError(label, err)
}

function tlsReason(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code
  return code ?? err.message.split('\n')[0] ?? 'unknown error'
}

function describe(err: unknown): string {
  return err instanceof LeftError ? `${err.code}: ${err.message}` : errorMessage(err)
}
