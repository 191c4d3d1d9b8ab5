/** A binary heap, for the walks of history whose frontier can be wide after many merges. */
export class Heap<T> {
  private readonly items: T[] = []

  /** `before(x, y)`: x comes out first. */
  constructor(private readonly before: (x: T, y: T) => boolean) {}

  /** True when any queued item passes `test`. */
  some(test: (item: T) => boolean): boolean {
    return this.items.some(test)
  }

  /** The item `pop` would return, left in place. */
  peek(): T | undefined {
    return this.items[0]
  }

  push(item: T): void {
    const a = this.items
    a.push(item)
    let i = a.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.before(a[i]!, a[parent]!)) break
      ;[a[i], a[parent]] = [a[parent]!, a[i]!]
      i = parent
    }
  }

  pop(): T | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (a.length === 0 || last === undefined) return top
    a[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < a.length && this.before(a[l]!, a[m]!)) m = l
      if (r < a.length && this.before(a[r]!, a[m]!)) m = r
      if (m === i) break
      ;[a[i], a[m]] = [a[m]!, a[i]!]
      i = m
    }
    return top
  }
}
