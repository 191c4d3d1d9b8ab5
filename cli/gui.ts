/**
 * Where the status page is served and how to reach it: `left watch --gui`
 * (remembered in `.left/config`), the page's token, and the address that
 * `left gui` prints. The server itself is src/gui/server.ts.
 */
import { type Config, type PeerAddress, UsageError, formatAddress, isLoopback, parseAddress } from '../src/index.js'

/** The page's port unless told otherwise: the one after the peers' 24242. */
export const DEFAULT_GUI_PORT = 24243

/** Where the page listens when nothing was said: loopback only. */
export const DEFAULT_GUI = `127.0.0.1:${DEFAULT_GUI_PORT}`

/**
 * Parses a `--gui` value: `off`, or `host[:port]`. A host that is not
 * loopback is refused unless `remote` (--gui-remote) is given: the page is
 * plain HTTP, so its token would cross the network in the clear.
 */
export function parseGui(text: string, remote: boolean): PeerAddress | 'off' {
  if (text === 'off') return 'off'
  const address = parseAddress(text, { defaultPort: DEFAULT_GUI_PORT })
  if (!isLoopback(address.host) && !remote) {
    throw new UsageError(`--gui ${text} would serve the page to other machines over plain HTTP; add --gui-remote to do that anyway, or use 127.0.0.1`)
  }
  return address
}

/** The page's address from the config: the remembered one, else the default. */
export function guiOf(config: Config): PeerAddress | 'off' {
  // A remembered address was checked, with --gui-remote where needed, when it was given.
  return parseGui(config.gui ?? DEFAULT_GUI, true)
}

/** Where to reach a server bound to `address` from this machine: a wildcard bind through loopback. */
export function reachable(address: PeerAddress): PeerAddress {
  const host = address.host === '0.0.0.0' ? '127.0.0.1' : address.host === '::' ? '::1' : address.host
  return { host, port: address.port }
}

/** The page's address, without the token. */
export function pageBase(address: PeerAddress): string {
  return `http://${formatAddress(reachable(address))}/`
}

/**
 * The address to open the page at, token included. The token rides in the
 * fragment, which a browser never sends to any server (nor in a Referer):
 * the page's script reads it and moves it out of the address bar.
 */
export function pageUrl(address: PeerAddress, token: string): string {
  return `${pageBase(address)}#token=${encodeURIComponent(token)}`
}
