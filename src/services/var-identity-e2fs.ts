// Writing /var/identity without an appliance: qemu-storage-daemon's FUSE export and debugfs,
// under a qcow2 rollback point per disk (var-rollback-point.ts).
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as e2fs from '../adapters/e2fs.js'
import { ToolError } from '../errors.js'
import * as qemuImg from '../adapters/qemu-img.js'
import * as rollback from './var-rollback-point.js'
import type { RollbackPoint } from './var-rollback-point.js'
import { identityMode } from '../machines/model.js'
import { again, e2fsckRefused, IDENTITY, inParallel, inUse, NEW, OLD, refuseLocked, refuseUnlessVar, type Disk } from './var-disk-rules.js'

/**
 * The appliance-free sync; resolves with why it could not be used (nothing written then), or
 * undefined when done. A rollback point (var-rollback-point.ts) covers each disk while it is
 * written; a disk an earlier, unfinished sync left with errors e2fsck -p will not repair is put
 * back to its point first, once. The points are taken and dropped through the daemon's monitor
 * while it holds the disks; where its socket path would be too long, with qemu-img before and after.
 */
export async function resyncE2fs(disks: Disk[], work: string, log: (line: string) => void, reverted = false, taken = new Set<string>()): Promise<string | undefined> {
  const points: RollbackPoint[] = []
  const key = (p: RollbackPoint): string => `${p.file}\0${p.name}`
  // Points this call took go away again unless a write began (then they cover it until the end).
  const dropTaken = async (): Promise<void> => {
    await inParallel(points.filter((p) => taken.has(key(p))), (p) => rollback.drop(p).catch(() => {}))
  }
  /** Takes (or finds) every disk's point; the first failure, if any. */
  const takePoints = async (via: (d: Disk, i: number) => rollback.DiskSnapshots): Promise<{ error?: unknown } | undefined> => {
    const got = await inParallel(disks, async (d, i): Promise<{ point?: RollbackPoint; error?: unknown }> => {
      try {
        await mkdir(join(work, `sb${i}`), { recursive: true, mode: 0o700 })
        return { point: await rollback.takeRollbackPoint(via(d, i), join(work, `sb${i}`)) }
      } catch (error) {
        return { error }
      }
    })
    for (const r of got) {
      const p = r.point
      if (!p) continue
      // After going back, the points this call took earlier are found again: still this call's.
      if (taken.has(key(p))) p.leftover = false
      if (!p.leftover) taken.add(key(p))
      points.push(p)
    }
    return got.find((r) => !r.point)
  }
  const exports = join(work, 'exports')
  await mkdir(exports, { recursive: true, mode: 0o700 })
  const monitor = e2fs.monitorPath(exports) !== undefined
  if (!monitor) {
    const failed = await takePoints((d) => rollback.byQemuImg(d.file))
    if (failed) {
      await dropTaken()
      // A running VM holds the write lock a snapshot needs.
      await refuseLocked(disks)
      throw failed.error
    }
  }
  let s: e2fs.E2fsSession
  try {
    s = await e2fs.E2fsSession.open(disks.map((d) => d.file), exports, { monitor })
  } catch (e) {
    await dropTaken()
    // A VM started since the check above: the daemon could not take the write lock.
    for (const d of disks) if (await qemuImg.isLocked(d.file).catch(() => false)) throw inUse(d.file)
    if (e instanceof ToolError) return `the FUSE export failed: ${e.stderr.trim().split('\n').slice(-1)[0] ?? ''}`
    throw e
  }
  const session = s
  // Ends the session; points taken through its monitor are dropped first, while it still runs.
  const end = async (drop: () => Promise<void>): Promise<void> => {
    if (monitor) await drop()
    await session.close()
    if (!monitor) await drop()
  }
  let writing = false
  try {
    if (monitor) {
      const failed = await takePoints((d, i) => rollback.bySession(session, i, d.file))
      if (failed) throw failed.error
    }
    const found = await inParallel(disks, (_, i) => e2fs.probe(s.image(i)))
    for (const [i, d] of disks.entries()) refuseUnlessVar(d.file, found[i]!.type, found[i]!.label)
    const checked = await inParallel(disks, (_, i) => e2fs.e2fsck(s.image(i)))
    for (const [i, d] of disks.entries()) {
      const r = checked[i]!
      if (r.result === 'unusable') {
        await end(dropTaken)
        return `e2fsck cannot use ${d.file}: ${r.output.split('\n').slice(-1)[0]}`
      }
      if (r.result === 'errors') {
        if (!reverted && (await rollback.safeToRevert(points[i]!, work))) {
          await end(async () => {})
          log(`/var disk ${d.file}: an earlier identity sync did not finish and left errors e2fsck -p will not repair; going back to the state before it (the guest has not mounted it since)`)
          await rollback.revert(points[i]!)
          return await resyncE2fs(disks, work, log, true, taken)
        }
        throw e2fsckRefused(d.file, new ToolError('e2fsck', ['-f', '-p', d.file], 4, r.output))
      }
    }
    writing = true
    for (const [i, d] of disks.entries()) {
      const staged = join(work, String(i))
      await mkdir(staged, { mode: 0o700 })
      const files = new Map<string, string>()
      for (const [name, data] of d.identity) {
        if (!/^[A-Za-z0-9._+-]+$/.test(name)) throw new Error(`identity file name ${JSON.stringify(name)}`)
        const local = join(staged, name)
        await writeFile(local, data, { mode: 0o600, flag: 'wx' })
        files.set(name, local)
      }
      try {
        await swapIdentityE2fs(s, i, files)
      } catch (e) {
        if (!(e instanceof ToolError)) throw e
        throw Object.assign(new ToolError(e.tool, e.args, e.code, e.stderr, again(d.file)), { cause: e })
      }
    }
  } catch (e) {
    await end(writing ? async () => {} : dropTaken).catch(() => {})
    throw e
  }
  // Written and flushed (each disk's last debugfs batch closed its filesystem through the export):
  // the points have done their job. One that cannot be dropped only costs space.
  await end(() => inParallel(points, (p) => rollback.drop(p).catch((e: Error) => log(`/var disk ${p.file}: could not remove the internal snapshot ${p.name} (${e.message}); qemu-img snapshot -d ${p.name} ${p.file} removes it`))).then(() => undefined))
  return undefined
}

/**
 * Disk i in the session: finish or undo an interrupted swap, write /identity.new, swap it in.
 * Each phase is one batch of debugfs commands ending with the filesystem closed, so it is on the
 * disk before the next begins (and a fleet that dies mid-batch still has it all carried out); the
 * swap itself rewrites one block (the root folder's), so a crash leaves it before or after.
 */
async function swapIdentityE2fs(s: e2fs.E2fsSession, i: number, files: Map<string, string>): Promise<void> {
  const { attrs, close, mkdir, put, rename } = e2fs.debugfsCmd
  const top = async (): Promise<Set<string>> => new Set((await s.list('/'))?.map((e) => e.name))
  await s.batch([s.open(i)])
  let root = await top()
  // Killed between the two renames: /identity.old is the complete old identity; put it back.
  if (!root.has('identity') && root.has('identity.old')) {
    await s.batch([...rename(OLD, IDENTITY), close(), s.open(i)])
    root = await top()
  }
  const stale = [...(root.has('identity.old') ? await rmTree(s, OLD) : []), ...(root.has('identity.new') ? await rmTree(s, NEW) : [])]
  const write = [...files].flatMap(([name, local]) => [put(local, `${NEW}/${name}`), ...attrs(`${NEW}/${name}`, 0o100000 | identityMode(name), 0, 0)])
  // The new files reach the disk (close) before any rename that makes them the identity.
  await s.batch([...stale, mkdir(NEW), ...attrs(NEW, 0o040755, 0, 0), ...write, close(), s.open(i)])
  // Both renames in one batch and one block: no kill or Ctrl-C leaves only the first done.
  await s.batch([...(root.has('identity') ? rename(IDENTITY, OLD) : []), ...rename(NEW, IDENTITY), close(), s.open(i)])
  await s.batch([...(await rmTree(s, OLD)), close()])
}

/** The commands of rm -rf `path` inside the open filesystem (debugfs removes one name at a time). */
async function rmTree(s: e2fs.E2fsSession, path: string): Promise<e2fs.DebugfsCommand[]> {
  const entries = await s.list(path)
  if (entries === undefined) {
    // Not a folder (or gone): a plain name, if anything.
    const parent = await s.list(path.slice(0, path.lastIndexOf('/')) || '/')
    return parent?.some((e) => e.name === path.slice(path.lastIndexOf('/') + 1)) ? [e2fs.debugfsCmd.rm(path)] : []
  }
  const out: e2fs.DebugfsCommand[] = []
  for (const e of entries) out.push(...(e.dir ? await rmTree(s, `${path}/${e.name}`) : [e2fs.debugfsCmd.rm(`${path}/${e.name}`)]))
  return [...out, e2fs.debugfsCmd.rmdir(path)]
}
