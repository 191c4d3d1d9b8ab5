/**
 * Building the page's DOM, and the words and numbers it shows. Text from the
 * folder (names, messages, peer ids) only ever becomes text nodes, never
 * markup, so a file called `<img onerror=…>` is shown as just that.
 */

type Child = Node | string | null | undefined | false

/** An element with attributes (`on…` functions become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K, attrs: Record<string, string | boolean | ((e: Event) => void) | undefined> = {}, ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue
    if (typeof value === 'function') el.addEventListener(name.slice(2), value)
    else el.setAttribute(name, value === true ? '' : value)
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c)
  return el
}

/** Replaces everything inside `el`. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false))
}

/** `1.5 MiB`, as the CLI prints sizes. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`
}

/** `12 s ago`, `3 min ago`, `2 h ago`, else the date. */
export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`
  return when(iso)
}

/** A time as `2026-11-29 19:20:18` in the viewer's zone. */
export function when(iso: string): string {
  const d = new Date(iso)
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}

/** `~4 s`, `~3 min`. */
export function eta(seconds: number | null): string {
  if (seconds === null) return ''
  return seconds < 90 ? `~${Math.ceil(seconds)} s` : `~${Math.ceil(seconds / 60)} min`
}

/** A change count as the CLI words it: `1 added, 2 modified, 0 deleted`. */
export function counts(c: { added: number; modified: number; deleted: number }): string {
  return `${c.added} added, ${c.modified} modified, ${c.deleted} deleted`
}

/** The first line of a commit message. */
export function firstLine(text: string): string {
  return text.split('\n')[0] ?? ''
}
