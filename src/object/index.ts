/** The object model: pure types, CIDs, names and canonical codecs. */
export * from './cid.js'
export * from './codec.js'
export * from './dir-layout.js'
export * from './file-layout.js'
export * from './links.js'
export * from './name.js'
export type * from './types.js'
