/** The LevelDB-backed store of objects, refs and caches. */
export * from './store.js'
