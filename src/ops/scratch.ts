// Scratch folders for one operation: <state>/tmp/<id>/, mode 0700 (they hold copies of private
// host keys and whole build trees), each with <id>.lock held by its owner while it lives.
// A folder whose lock is free belongs to a process that is gone: any fleet command removes it.
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { run } from '../adapters/exec.js'
import type { Paths } from '../repo.js'
import { acquire, tryAcquire } from '../util/lock.js'

export interface Scratch {
  dir: string
  /** Removes the folder and drops its lock; safe to call twice. */
  remove: () => Promise<void>
}

async function removeTree(dir: string, privileged: boolean): Promise<void> {
  // Build trees are root-owned (made through SUDO): removed with the same privileges.
  if (privileged) await run(['rm'], ['-rf', '--one-file-system', dir], { privileged: true, uncancellable: true })
  else await rm(dir, { recursive: true, force: true })
}

export async function makeScratch(paths: Paths, kind: string, opts: { privileged?: boolean } = {}): Promise<Scratch> {
  await mkdir(paths.state, { recursive: true }) // default mode: qemu must pass through it
  await mkdir(paths.tmp, { recursive: true, mode: 0o700 })
  await chmod(paths.tmp, 0o700)
  const dir = await mkdtemp(join(paths.tmp, `${kind}-`)) // mkdtemp makes it 0700
  const lock = await acquire(`${dir}.lock`, `scratch folder ${dir}`, { waitMs: 0 })
  let removed = false
  return {
    dir,
    remove: async () => {
      if (removed) return
      removed = true
      await removeTree(dir, Boolean(opts.privileged))
      await rm(`${dir}.lock`, { force: true })
      await lock.release()
    },
  }
}

/** Removes scratch folders left by processes that are gone; returns what it removed. */
export async function sweepScratch(paths: Paths): Promise<string[]> {
  if (!existsSync(paths.tmp)) return []
  const removed: string[] = []
  const entries = await readdir(paths.tmp)
  for (const f of entries) {
    if (f.endsWith('.lock')) {
      // A lock whose folder is gone (killed between the two removals).
      if (entries.includes(f.slice(0, -5))) continue
      const lock = await tryAcquire(join(paths.tmp, f))
      if (lock) {
        await rm(join(paths.tmp, f), { force: true })
        await lock.release()
      }
      continue
    }
    const dir = join(paths.tmp, f)
    const lock = await tryAcquire(`${dir}.lock`)
    if (!lock) continue // its owner is running
    try {
      await removeTree(dir, true)
      await rm(`${dir}.lock`, { force: true })
      removed.push(`scratch folder ${basename(dir)}`)
    } finally {
      await lock.release()
    }
  }
  return removed
}
