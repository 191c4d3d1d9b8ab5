/**
 * LEFT's public library API: the repository facade plus the pieces a tool
 * built on LEFT may want (errors, object codecs, chunker, store, diff,
 * retention, the folder service, its control socket and events).
 */
export * from './errors.js'
export * from './object/index.js'
export { chunkStream, chunkLengths, cutPoint, DEFAULT_PARAMS, type ChunkParams } from './chunk/fastcdc.js'
export { Store, type ObjectStore, type StatEntry, type StoreWrite } from './store/index.js'
export { type Change, diffTrees, summarize } from './tree/diff.js'
export { Pathspec } from './tree/pathspec.js'
export { Repo, collect, normalizeRel, type ChangeSummary, type ConflictCopy, type ContentFrom, type ForgetResult, type CommitResult, type IntegrateResult, type LogEntry, type LogQuery, type Progress, type ReflogEntry, type RepoObjects, type UpdateResult } from './repo/repo.js'
export { contentStats, fsck, gc, type ContentStats, type FsckReport } from './repo/maintenance.js'
export { POLICY_FIELDS, checkPolicy, keptBy, parseDuration, type Dated, type RetentionPolicy } from './history/retention.js'
export { generateKey, type Config } from './repo/config.js'
export { DEFAULT_PORT, formatAddress, parseAddress, type PeerAddress } from './sync/address.js'
export type { FetchProgress } from './sync/fetch.js'
export { FolderService, type NodeStatus, type PeerStatus, type ServiceOptions, type SyncRelation, type WatchSettings } from './node/service.js'
export { type ControlHandler, type ControlOutput, type ControlServer, type DaemonConnection, connectDaemon, controlSocketPath, listenControl } from './node/control.js'
export { CONTROL_VERSION, type Terminal } from './node/control-messages.js'
export { EVENT_TYPES, EventLog, type NodeEvent, type NodeEventBody, describeEvent } from './node/events.js'
export { contentFrom, type PeerContent } from './node/content-source.js'
export { ALL_PEERS, withPaused, withResumed } from './node/pause.js'
export { generateGuiToken, isLoopback, tokenProof } from './gui/access.js'
export { type GuiServer, type GuiServerOptions, listenGui } from './gui/server.js'
