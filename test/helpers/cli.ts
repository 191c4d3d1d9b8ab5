/** Running the real `left` binary in temp directories, as a user would. */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Absolute path of the built CLI entry point. */
export const LEFT_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'main.js')

/** What one CLI run printed and how it exited. */
export interface RunResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `left ...args` in `cwd` and waits for it to exit. */
export function left(cwd: string, args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LEFT_BIN, ...args], { cwd, env: { ...process.env, LEFT_DEBUG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Runs `left` and fails the test unless it exits 0; returns trimmed stdout. */
export async function leftOk(cwd: string, args: readonly string[], env: Record<string, string> = {}): Promise<string> {
  const r = await left(cwd, args, env)
  if (r.code !== 0) throw new Error(`left ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
  return r.stdout.trim()
}

/** Runs `left commit ...args` and returns the new commit's whole id; fails the test when nothing was committed. */
export async function commitOk(cwd: string, args: readonly string[] = []): Promise<string> {
  const made = JSON.parse(await leftOk(cwd, ['commit', '--json', ...args])) as { id: string | null }
  assert.ok(made.id !== null, `left commit ${args.join(' ')} committed nothing`)
  return made.id
}

/** A fresh temp directory, removed by the returned cleanup. */
export async function tempDir(prefix = 'left-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

/** Runs `fn` in a fresh LEFT folder (`left init` in a temp directory), removed afterwards. */
export async function inNewFolder(fn: (dir: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempDir()
  try {
    await leftOk(dir, ['init'])
    await fn(dir)
  } finally {
    await cleanup()
  }
}

/** Asserts a failed run: non-zero exit, exactly one line on stderr, no stack trace. */
export function assertOneLineError(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.code, 0)
  const lines = r.stderr.trim().split('\n')
  assert.equal(lines.length, 1, `stderr: ${r.stderr}`)
  assert.match(lines[0]!, pattern)
  assert.doesNotMatch(r.stderr, /\n\s+at /)
}

/**
 * The local-changes part of `left status` (below the synchronizer lines and
 * the blank line); fails the test unless it exits 0.
 */
export async function statusChanges(cwd: string): Promise<string> {
  const out = await leftOk(cwd, ['status'])
  const blank = out.indexOf('\n\n')
  assert.ok(out.startsWith('synchronizer: ') && blank !== -1, `unexpected status output:\n${out}`)
  return out.slice(blank + 2)
}
