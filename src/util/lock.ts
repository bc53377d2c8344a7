// Cross-process locks that die with their process: flock(2) on a lock file that fleet keeps
// open. Node has no flock, so util-linux `flock` takes it on fleet's own descriptor (passed as
// fd 3): a flock belongs to the open file description, which stays with fleet after the child
// exits. The kernel drops it when fleet's descriptor closes — on exit, crash or SIGKILL — so a
// lock is never stale, never half-written and never released by someone else. Lock files are
// never deleted (deleting a lock file while another process waits on it splits the lock).
import { constants } from 'node:fs'
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { tryRun } from '../adapters/exec.js'
import { BusyError, ToolError } from '../errors.js'
import { once } from './once.js'

export interface Lock {
  file: string
  release: () => Promise<void>
}

export interface LockOptions {
  /** Shared (many holders) instead of exclusive. */
  shared?: boolean
  /** How long to wait for another holder; default FLEET_LOCK_WAIT_MS or 30 s. */
  waitMs?: number
  /** Told once when the lock is busy and fleet starts waiting. */
  onWait?: (line: string) => void
}

async function openLockFile(file: string): Promise<FileHandle> {
  // The folder above (the state directory) gets the default mode: qemu must pass through it.
  await mkdir(dirname(dirname(file)), { recursive: true })
  await mkdir(dirname(file), { recursive: true, mode: 0o700 })
  // O_NOFOLLOW: a lock file is never a symlink planted elsewhere.
  return open(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)
}

/** flock on fh: true when taken, false when busy after `waitS` seconds (0: do not wait). */
async function flock(fh: FileHandle, shared: boolean, waitS: number): Promise<boolean> {
  const mode = shared ? '--shared' : '--exclusive'
  const wait = waitS > 0 ? ['--wait', String(waitS)] : ['--nonblock']
  // Lock acquisition must not be cancelled half way by Ctrl-C: it is quick or a bounded wait.
  const r = await tryRun(['flock'], [mode, ...wait, '--conflict-exit-code', '75', '3'], { fd3: fh.fd, uncancellable: true })
  if (r.exitCode === 0) return true
  if (r.exitCode === 75) return false
  throw new ToolError('flock', [mode, ...wait, '3'], r.exitCode, r.stderr)
}

async function holderOf(file: string): Promise<string> {
  const b = await readFile(file, 'utf8').catch(() => '')
  return b.trim() || 'another fleet process'
}

/**
 * Shared locks this process holds, by file: a second shared acquire of the same file (the store
 * lock of VMs created side by side) counts on the flock already held instead of taking another;
 * the descriptor closes when the last holder releases.
 */
const sharedHeld = new Map<string, { taking: Promise<FileHandle>; holders: number }>()

async function acquireShared(file: string, what: string, opts: LockOptions): Promise<Lock> {
  let entry = sharedHeld.get(file)
  if (!entry) {
    const made = { taking: take(file, what, opts, true), holders: 0 }
    sharedHeld.set(file, made)
    made.taking.catch(() => sharedHeld.get(file) === made && sharedHeld.delete(file))
    entry = made
  }
  entry.holders++
  const held = entry
  const fh = await held.taking.catch((e: unknown) => {
    held.holders--
    throw e
  })
  return {
    file,
    release: once(async () => {
      if (--held.holders > 0) return
      if (sharedHeld.get(file) === held) sharedHeld.delete(file)
      await fh.close() // the last holder: closing the only descriptor drops the flock
    }),
  }
}

/** Takes the lock, waiting up to waitMs; BusyError (exit 4) when it stays busy. */
export async function acquire(file: string, what: string, opts: LockOptions = {}): Promise<Lock> {
  if (opts.shared) return acquireShared(file, what, opts)
  const fh = await take(file, what, opts, false)
  return { file, release: once(() => fh.close()) } // closing the only descriptor drops the flock
}

/** Opens the lock file and flocks it, waiting up to waitMs; the held descriptor. */
async function take(file: string, what: string, opts: LockOptions, shared: boolean): Promise<FileHandle> {
  const fh = await openLockFile(file)
  try {
    if (!(await flock(fh, shared, 0))) {
      const waitMs = opts.waitMs ?? Number(process.env.FLEET_LOCK_WAIT_MS ?? 30_000)
      const holder = await holderOf(file)
      opts.onWait?.(`Waiting up to ${Math.round(waitMs / 1000)}s for ${what} (held by ${holder})`)
      if (waitMs <= 0 || !(await flock(fh, shared, waitMs / 1000))) {
        throw new BusyError(`${what} is locked by ${await holderOf(file)}`, 'Wait for it to finish and run the command again. The lock goes away by itself when that process ends.')
      }
    }
    if (!shared) {
      // For the busy message of the next process only; the flock is what locks.
      await fh.truncate(0)
      await fh.write(`pid ${process.pid} (fleet ${process.argv.slice(2, 3).join(' ')})`, 0)
    }
  } catch (e) {
    await fh.close()
    throw e
  }
  return fh
}

/** The lock if it is free right now, else undefined. */
export async function tryAcquire(file: string, opts: { shared?: boolean } = {}): Promise<Lock | undefined> {
  const fh = await openLockFile(file)
  if (!(await flock(fh, Boolean(opts.shared), 0).catch(async (e) => {
    await fh.close()
    throw e
  }))) {
    await fh.close()
    return undefined
  }
  return { file, release: () => fh.close() }
}

export async function withLock<T>(file: string, what: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lock = await acquire(file, what, opts)
  try {
    return await fn()
  } finally {
    await lock.release()
  }
}

/** Several locks in sorted order (two batches can never deadlock), duplicates once. */
export async function withLocks<T>(entries: { file: string; what: string }[], fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const unique = [...new Map(entries.map((e) => [e.file, e])).values()].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))
  const held: Lock[] = []
  try {
    for (const e of unique) held.push(await acquire(e.file, e.what, opts))
    return await fn()
  } finally {
    for (const l of held.reverse()) await l.release()
  }
}
