/**
 * Where old content comes from when a command needs it and no peer is at
 * hand: one peer named with `--from`, dialled only when something is
 * actually missing, and for nothing else. The session does not sync: our
 * head is not merged there, nor theirs here.
 */
import { formatAddress, type PeerAddress } from '../sync/address.js'
import type { BlockSource } from '../sync/content.js'
import type { Session } from '../sync/session.js'
import { connect } from '../sync/tls.js'
import type { ContentFrom, Repo } from '../repo/repo.js'

/** A content source over one peer, and how to let it go. */
export interface PeerContent extends ContentFrom {
  readonly source: BlockSource
  /** Closes the session, if one was opened. */
  close(): Promise<void>
}

/** Content from the peer at `address`, connecting on the first request. */
export function contentFrom(repo: Repo, address: PeerAddress): PeerContent {
  let session: Promise<Session> | undefined
  const open = (): Promise<Session> => {
    session ??= connect({
      address,
      key: repo.config.key,
      // No head: the peer has nothing to fetch from us, so this stays a
      // few requests and never becomes a sync.
      session: { store: repo.objects, peerId: repo.config.peerId, head: async () => undefined }
    })
    return session
  }
  return {
    source: { request: async (cid) => (await open()).request(cid) },
    absentWhy: `and ${formatAddress(address)} does not have it either`,
    async close() {
      if (session !== undefined) await (await session.catch(() => undefined))?.close()
    }
  }
}
