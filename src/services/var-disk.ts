// The /var disk: ext4 labelled `var` holding identity/ (modes: docs/guest-contract.md), home/ and log/journal/.
import { mkdtemp, mkdir, chmod, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { deviceOf, GuestfishSession, runGuestfish } from '../adapters/guestfish.js'
import { ToolError, UserError } from '../errors.js'
import * as e2fs from '../adapters/e2fs.js'
import { chownRoot, mkfsExt4FromDir } from '../adapters/mkfs.js'
import * as qemuImg from '../adapters/qemu-img.js'
import * as rollback from './var-rollback-point.js'
import type { RollbackPoint } from './var-rollback-point.js'
import { identityMode } from '../machines/model.js'
import { ustar, type TarEntry } from './ustar.js'

export const VAR_LABEL = 'var'
export type VarDiskMethod = 'mkfs' | 'guestfish'

export function varDiskMethod(env = process.env): VarDiskMethod {
  return env.FLEET_VAR_METHOD === 'guestfish' ? 'guestfish' : 'mkfs'
}

/** Folders every /var disk has besides identity/. */
const SKELETON = ['home', 'log', 'log/journal']

/** /identity, the new set written beside it, and the old set while it is swapped out. */
const IDENTITY = '/identity'
const NEW = '/identity.new'
const OLD = '/identity.old'

/** A 0700 folder inside the caller's `tmpDir` for staged copies (they include the SSH host private key), removed on every path. */
async function withStaging<T>(tmpDir: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpDir, 'var-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** `folder` (e.g. /identity.new) as a tar: 0755, files with identityMode(), all owned 0:0; written 0600 into `dir`. */
async function stageIdentityTar(identity: Map<string, Buffer>, dir: string, folder: string): Promise<string> {
  const top = folder.replace(/^\//, '')
  const entries: TarEntry[] = [{ name: `${top}/`, mode: 0o755 }]
  for (const [name, data] of identity) entries.push({ name: `${top}/${name}`, mode: identityMode(name), data })
  const file = join(dir, 'identity.tar')
  await writeFile(file, ustar(entries), { mode: 0o600, flag: 'wx' })
  return file
}

/**
 * A new /var disk at `file` (qcow2, mode 0600: it holds the SSH host private key). 'mkfs' builds
 * the filesystem in userspace with `mkfs.ext4 -d` (no appliance, ~0.1 s); 'guestfish' formats and
 * writes through the libguestfs appliance (~30 s under TCG). Tests show both give the same files,
 * modes and owners. Staged copies of the identity live only inside `tmpDir` (a 0700 folder the
 * caller creates and removes).
 */
export async function createVarDisk(file: string, sizeBytes: number, identity: Map<string, Buffer>, method: VarDiskMethod, tmpDir: string): Promise<void> {
  // qemu-img create/convert reuse an existing file and keep its mode: make it 0600 before any byte.
  await writeFile(file, '', { mode: 0o600 })
  await chmod(file, 0o600)
  await withStaging(tmpDir, async (work) => {
    if (method === 'guestfish') {
      await qemuImg.createQcow2(file, sizeBytes)
      const tar = await stageIdentityTar(identity, work, IDENTITY)
      await runGuestfish([file], [
        ['mkfs', 'ext4', deviceOf(0), `label:${VAR_LABEL}`],
        ['mount', deviceOf(0), '/'],
        ...SKELETON.map((d) => ['mkdir-p', `/${d}`]),
        ['tar-in', tar, '/'],
      ])
      return
    }
    const root = join(work, 'root')
    await mkdir(join(root, 'identity'), { recursive: true })
    for (const d of SKELETON) await mkdir(join(root, d), { recursive: true })
    for (const [name, data] of identity) {
      const p = join(root, 'identity', name)
      await writeFile(p, data)
      await chmod(p, identityMode(name))
    }
    for (const d of ['identity', ...SKELETON]) await chmod(join(root, d), 0o755)
    const raw = join(work, 'var.raw')
    await mkfsExt4FromDir(raw, sizeBytes, VAR_LABEL, root)
    if (process.getuid?.() !== 0) {
      await chownRoot(raw, ['/identity', ...SKELETON.map((d) => `/${d}`), ...[...identity.keys()].map((n) => `/identity/${n}`)])
    }
    await qemuImg.convert(raw, 'raw', file)
  })
  await chmod(file, 0o600)
}

/** How the identity reaches an existing /var disk: e2fsprogs through a FUSE export, or the libguestfs appliance. */
export type IdentityMethod = 'e2fs' | 'guestfish'

/** FLEET_VAR_METHOD=guestfish forces the appliance; otherwise the appliance-free path where it works. */
export function identityMethod(env = process.env): IdentityMethod {
  return env.FLEET_VAR_METHOD === 'guestfish' ? 'guestfish' : 'e2fs'
}

type Disk = { file: string; identity: Map<string, Buffer> }

/**
 * Makes /identity on each /var disk hold exactly its `identity` (modes from identityMode(),
 * owner 0:0). By default without an appliance (e2fs: qemu-storage-daemon's FUSE export and
 * debugfs, ~0.1 s a disk); with the guestfish appliance (ONE launch for all disks) when
 * FLEET_VAR_METHOD=guestfish, when FUSE or the tools are missing, or when e2fsck cannot use a
 * filesystem (a feature the host's e2fsprogs does not know). `log` hears which method ran.
 *
 * Refuses, before writing anything, a disk that a process holds open (a running VM), that is not
 * ext4 labelled `var`, or whose filesystem `e2fsck -f -p` (journal replayed) cannot leave clean.
 * The new set is written complete to /identity.new and flushed, then swapped in with renames
 * (/identity → /identity.old, /identity.new → /identity); so a failure or kill at any point leaves a
 * complete identity, old or new, and the next call converges from whatever it finds: a lone
 * /identity.old (killed between the renames) is the old identity and is moved back first.
 * Staged copies (they include the SSH host private key) live only inside `tmpDir`, a 0700 folder
 * the caller creates and removes; this function removes its own files there on every path.
 */
export async function resyncIdentity(disks: Disk[], tmpDir: string, log: (line: string) => void = () => {}): Promise<IdentityMethod | undefined> {
  if (!disks.length) return undefined
  let why = identityMethod() === 'guestfish' ? 'FLEET_VAR_METHOD=guestfish' : await e2fs.unavailable()
  // The appliance-free path learns it from qemu itself (its snapshot and export need the write lock).
  if (why) await refuseLocked(disks)
  if (!why) {
    log(`Identity sync of ${disks.length} /var disk(s): e2fs (qemu-storage-daemon FUSE export + debugfs, no appliance)`)
    why = await withStaging(tmpDir, (work) => resyncE2fs(disks, work, log))
    if (!why) return 'e2fs'
  }
  log(`Identity sync of ${disks.length} /var disk(s): guestfish appliance, one launch (${why})`)
  await withStaging(tmpDir, (work) => resyncGuestfish(disks, work))
  return 'guestfish'
}

/**
 * The appliance-free sync; resolves with why it could not be used (nothing written then), or
 * undefined when done. A rollback point (var-rollback-point.ts) covers each disk while it is
 * written; a disk an earlier, unfinished sync left with errors e2fsck -p will not repair is put
 * back to its point first, once.
 */
async function resyncE2fs(disks: Disk[], work: string, log: (line: string) => void, reverted = false, taken = new Set<string>()): Promise<string | undefined> {
  const points: RollbackPoint[] = []
  const key = (p: RollbackPoint): string => `${p.file}\0${p.name}`
  // Points this call took go away again unless a write began (then they cover it until the end).
  const dropTaken = async (): Promise<void> => {
    await inParallel(points.filter((p) => taken.has(key(p))), (p) => rollback.drop(p).catch(() => {}))
  }
  const got = await inParallel(disks, async (d, i) => {
    try {
      await mkdir(join(work, `sb${i}`), { recursive: true, mode: 0o700 })
      return { point: await rollback.takeRollbackPoint(d.file, join(work, `sb${i}`)) }
    } catch (e) {
      return { error: e }
    }
  })
  for (const r of got) {
    if (!r.point) continue
    const p = r.point
    // After going back, the points this call took earlier are found again: still this call's.
    if (taken.has(key(p))) p.leftover = false
    if (!p.leftover) taken.add(key(p))
    points.push(p)
  }
  const failed = got.find((r) => !r.point)
  if (failed) {
    await dropTaken()
    // A running VM holds the write lock a snapshot needs.
    await refuseLocked(disks)
    throw failed.error
  }
  const exports = join(work, 'exports')
  await mkdir(exports, { recursive: true, mode: 0o700 })
  let s: e2fs.E2fsSession
  try {
    s = await e2fs.E2fsSession.open(disks.map((d) => d.file), exports)
  } catch (e) {
    await dropTaken()
    // A VM started since the check above: the daemon could not take the write lock.
    for (const d of disks) if (await qemuImg.isLocked(d.file).catch(() => false)) throw inUse(d.file)
    if (e instanceof ToolError) return `the FUSE export failed: ${e.stderr.trim().split('\n').slice(-1)[0] ?? ''}`
    throw e
  }
  let writing = false
  try {
    const found = await inParallel(disks, (_, i) => e2fs.probe(s.image(i)))
    for (const [i, d] of disks.entries()) refuseUnlessVar(d.file, found[i]!.type, found[i]!.label)
    const checked = await inParallel(disks, (_, i) => e2fs.e2fsck(s.image(i)))
    for (const [i, d] of disks.entries()) {
      const r = checked[i]!
      if (r.result === 'unusable') {
        await s.close()
        await dropTaken()
        return `e2fsck cannot use ${d.file}: ${r.output.split('\n').slice(-1)[0]}`
      }
      if (r.result === 'errors') {
        if (!reverted && (await rollback.safeToRevert(points[i]!, work))) {
          await s.close()
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
    await s.close().catch(() => {})
    if (!writing) await dropTaken()
    throw e
  }
  await s.close()
  // Written and flushed: the points have done their job. One that cannot be dropped only costs space.
  await inParallel(points, (p) => rollback.drop(p).catch((e: Error) => log(`/var disk ${p.file}: could not remove the internal snapshot ${p.name} (${e.message}); qemu-img snapshot -d ${p.name} ${p.file} removes it`)))
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

function again(file: string): string {
  return `/var disk ${file} keeps a complete identity (old or new; disks before it have the new one). Fix the cause and run the command again: it finishes the swap.`
}

/** The appliance path: one guestfish launch for all disks. */
async function resyncGuestfish(disks: Disk[], work: string): Promise<void> {
  const staged = await Promise.all(disks.map(async (d, i) => {
    await mkdir(join(work, String(i)), { mode: 0o700 })
    return stageIdentityTar(d.identity, join(work, String(i)), NEW)
  }))
  let g: GuestfishSession
  try {
    g = await GuestfishSession.open(disks.map((d) => d.file))
  } catch (e) {
    // A VM started since the check above: the appliance could not take the write lock.
    for (const d of disks) if (await qemuImg.isLocked(d.file).catch(() => false)) throw inUse(d.file)
    throw e
  }
  try {
    for (const [i, d] of disks.entries()) await checkVarFilesystem(g, deviceOf(i), d.file)
    for (const [i, tar] of staged.entries()) {
      await g.mount(deviceOf(i), '/')
      try {
        await swapIdentity(g, tar)
      } catch (e) {
        if (!(e instanceof ToolError)) throw e
        throw Object.assign(new ToolError(e.tool, e.args, e.code, e.stderr, again(disks[i]!.file)), { cause: e })
      }
      await g.umount('/')
    }
  } catch (e) {
    await g.close().catch(() => {})
    throw e
  }
  await g.close()
}

/** Refuses, naming it, the first disk a process holds open read-write (a running VM). */
async function refuseLocked(disks: Disk[]): Promise<void> {
  const locked = await inParallel(disks, (d) => qemuImg.isLocked(d.file))
  const i = locked.indexOf(true)
  if (i >= 0) throw inUse(disks[i]!.file)
}

/** `fn` over `items`, at most 4 at a time (spawning tools is most of the cost), results in order. */
async function inParallel<T, R>(items: T[], fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(4, items.length) }, worker))
  return out
}

function inUse(file: string): UserError {
  return new UserError(`/var disk ${file} is in use by another process (a running VM?); nothing was written to it`, 'Stop the VM that uses it (fleet stop-vm NAME), then run the command again.')
}

/** Refuses a disk whose filesystem (as blkid names it; '' for none) is not ext4 labelled `var`. */
function refuseUnlessVar(file: string, type: string, label: string): void {
  if (type !== 'ext4') throw new UserError(`/var disk ${file} holds ${type ? `a ${type} filesystem` : 'no filesystem'}, not ext4 labelled "${VAR_LABEL}"; nothing was written to it`, 'Check that the path points at a VM\'s var.qcow2.')
  if (label !== VAR_LABEL) throw new UserError(`/var disk ${file} is ext4 labelled "${label}", not "${VAR_LABEL}"; nothing was written to it`, 'Check that the path points at a VM\'s var.qcow2.')
}

function e2fsckRefused(file: string, cause: unknown): UserError {
  const err = new UserError(`/var disk ${file}: e2fsck -f -p found errors it cannot repair safely; nothing was written to it`, `Repair it by hand first (e.g. guestfish -a ${file} run : e2fsck /dev/sda forceall:true), then run the command again.`)
  return Object.assign(err, { cause })
}

/** Refuses a disk that is not a clean ext4 labelled `var`, naming it. */
async function checkVarFilesystem(g: GuestfishSession, device: string, file: string): Promise<void> {
  refuseUnlessVar(file, await g.vfsType(device), await g.vfsLabel(device))
  try {
    await g.e2fsck(device)
  } catch (e) {
    throw e2fsckRefused(file, e)
  }
}

/** On the mounted disk: finish or undo an interrupted swap, write /identity.new, swap it in. */
async function swapIdentity(g: GuestfishSession, tar: string): Promise<void> {
  // Killed between the two renames: /identity.old is the complete old identity; put it back.
  if (!(await g.exists(IDENTITY)) && (await g.exists(OLD))) await g.rename(OLD, IDENTITY)
  await g.rmRf(OLD)
  await g.rmRf(NEW)
  await g.tarIn(tar, '/')
  // The new files reach the disk before any rename that makes them the identity.
  await g.sync()
  // Ctrl-C does not stop between the renames; a kill there is what the first line repairs.
  await g.uninterrupted(async () => {
    if (await g.exists(IDENTITY)) await g.rename(IDENTITY, OLD)
    await g.rename(NEW, IDENTITY)
  })
  await g.rmRf(OLD)
}
