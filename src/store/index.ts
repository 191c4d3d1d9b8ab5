/** The object store: its contract, and the implementation on abstract-level databases. */
export * from './interface.js'
export * from './store.js'
