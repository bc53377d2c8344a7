// Scratch folders for one operation: <state>/tmp/<id>/, mode 0700 (they hold copies of private
// host keys and whole build trees), each with <id>.lock held by its owner while it lives.
// A folder whose lock is free belongs to a process that is gone: any fleet command removes it.
// Boot verifications keep theirs in <state>/verify/ instead, where qemu may enter (0710, qemu's
// group); removing a stale one first removes the throwaway domain that booted from it.
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { run } from '../adapters/exec.js'
import type { Paths } from '../repo.js'
import { makeVmDir } from '../services/permissions.js'
import { acquire, tryAcquire } from '../util/lock.js'
import { once } from '../util/once.js'
import { removeVerifyDomain } from './verify-domain.js'

/** The scratch folders this process made and still holds: a sweep skips them without asking flock. */
const ours = new Set<string>()

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

/**
 * A scratch folder <state>/tmp/<kind>-XXXXXX (0700). `qemu`: <state>/verify/<kind>-XXXXXX instead,
 * which qemu's user may enter (root:qemu's group 0710, like vms/NAME), for a throwaway domain's disks.
 */
export async function makeScratch(paths: Paths, kind: string, opts: { privileged?: boolean; qemu?: boolean } = {}): Promise<Scratch> {
  await mkdir(paths.state, { recursive: true }) // default mode: qemu must pass through it
  const parent = opts.qemu ? paths.verify : paths.tmp
  if (opts.qemu) await makeVmDir(parent)
  else {
    await mkdir(parent, { recursive: true, mode: 0o700 })
    await chmod(parent, 0o700)
  }
  const dir = await mkdtemp(join(parent, `${kind}-`)) // mkdtemp makes it 0700
  ours.add(dir) // before its lock is taken: a sweep of this process leaves it alone meanwhile
  const lock = await acquire(`${dir}.lock`, `scratch folder ${dir}`, { waitMs: 0 }).catch((e: unknown) => {
    ours.delete(dir)
    throw e
  })
  if (opts.qemu) await makeVmDir(dir)
  return {
    dir,
    remove: once(async () => {
      await removeTree(dir, Boolean(opts.privileged))
      await rm(`${dir}.lock`, { force: true })
      await lock.release()
      ours.delete(dir)
    }),
  }
}

/**
 * A folder of its own inside `parent` (0700, covered by the parent's lock: no lock of its own);
 * remove() removes just it. For the operations of a batch that share one scratch folder.
 */
export async function nestedScratch(parent: Scratch, kind: string): Promise<Scratch> {
  const dir = await mkdtemp(join(parent.dir, `${kind}-`))
  return { dir, remove: once(() => rm(dir, { recursive: true, force: true })) }
}

/** Removes scratch folders left by processes that are gone; returns what it removed. */
export async function sweepScratch(paths: Paths): Promise<string[]> {
  return [...await sweepIn(paths, paths.tmp), ...await sweepIn(paths, paths.verify)]
}

async function sweepIn(paths: Paths, parent: string): Promise<string[]> {
  if (!existsSync(parent)) return []
  const removed: string[] = []
  const entries = await readdir(parent)
  for (const f of entries) {
    if (ours.has(join(parent, f.replace(/\.lock$/, '')))) continue
    if (f.endsWith('.lock')) {
      // A lock whose folder is gone (killed between the two removals).
      if (entries.includes(f.slice(0, -5))) continue
      const lock = await tryAcquire(join(parent, f))
      if (lock) {
        await rm(join(parent, f), { force: true })
        await lock.release()
      }
      continue
    }
    const dir = join(parent, f)
    const lock = await tryAcquire(`${dir}.lock`)
    if (!lock) continue // its owner is running
    try {
      // A killed verification's domain still runs from this folder: gone before its disks.
      if (parent === paths.verify) {
        // libvirt unreachable: the folder stays (its disks may be in use) for a later command.
        const domain = await removeVerifyDomain(paths, dir).catch(() => null)
        if (domain === null) continue
        if (domain) removed.push(`throwaway domain ${domain}`)
      }
      await removeTree(dir, true)
      await rm(`${dir}.lock`, { force: true })
      removed.push(`scratch folder ${basename(dir)}`)
    } finally {
      await lock.release()
    }
  }
  return removed
}
