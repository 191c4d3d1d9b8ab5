/**
 * How far V8 lets the heap grow between full collections, in a `left`
 * process. A big heap is held to twice what survives a collection; a small
 * one keeps V8's own rule, which lets it grow up to four times.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks'
import { getHeapStatistics, setFlagsFromString } from 'node:v8'

/** What survives a full collection, in bytes, above which growth is held to twice that. */
export const BOUND_ABOVE = 32 * 1024 * 1024
/** ...and below which V8's rule is back: apart from BOUND_ABOVE, so a heap near it does not flip at every collection. */
export const BOUND_BELOW = 16 * 1024 * 1024

/**
 * Whether growth should be held, given what survived the last full
 * collection and whether it is held now.
 */
export function holdGrowth(live: number, held: boolean): boolean {
  return held ? live > BOUND_BELOW : live > BOUND_ABOVE
}

/**
 * Holds the heap's growth once it is big, and lets go once it is small
 * again. Unbounded, a scan that holds 90 MB while in a directory of
 * 200,000 files peaked anywhere from 170 to 510 MB of its own memory,
 * depending on when a collection came. Always held, a 1 GiB sync, whose
 * heap stays near 12 MB but whose chunks in flight count toward the
 * limit too, collected 170–185 times where V8's rule collects 38–78
 * times, and took about 1 s longer (docs/benchmarks.md, "Memory at a
 * million files" and "Collecting less").
 * V8 reads the flag at each collection, so setting it after start takes
 * effect. Node 20, 22 and 24 know the flag; one that did not would print
 * two lines on stderr for every command, which a test would catch. A
 * value given to node by hand wins.
 */
export function boundHeapGrowth(): HeapBound {
  const bound = { held: false }
  if (process.execArgv.some((arg) => arg.startsWith('--heap-growing-percent'))) return bound
  const observer = new PerformanceObserver((list) => {
    // What is left after a full collection is what survives; after a minor one it says little.
    if (!list.getEntries().some((e) => (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) return
    const hold = holdGrowth(getHeapStatistics().used_heap_size, bound.held)
    if (hold === bound.held) return
    bound.held = hold
    setFlagsFromString(`--heap-growing-percent=${hold ? 100 : 0}`)
  })
  observer.observe({ entryTypes: ['gc'] })
  return bound
}

/** Whether boundHeapGrowth holds the heap's growth now. */
export interface HeapBound {
  readonly held: boolean
}
