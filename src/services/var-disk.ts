// The /var disk: ext4 labelled `var` holding identity/ (modes: docs/guest-contract.md), home/ and log/journal/.
import { mkdtemp, mkdir, chmod, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { deviceOf, GuestfishSession, runGuestfish } from '../adapters/guestfish.js'
import { ToolError } from '../errors.js'
import * as e2fs from '../adapters/e2fs.js'
import { chownRoot, mkfsExt4FromDir } from '../adapters/mkfs.js'
import * as qemuImg from '../adapters/qemu-img.js'
import { identityMode } from '../machines/model.js'
import { ustar, type TarEntry } from './ustar.js'
import { again, e2fsckRefused, IDENTITY, inUse, NEW, OLD, refuseLocked, refuseUnlessVar, VAR_LABEL, type Disk } from './var-disk-rules.js'
import { resyncE2fs } from './var-identity-e2fs.js'

export { VAR_LABEL } from './var-disk-rules.js'

export type VarDiskMethod = 'mkfs' | 'guestfish'

export function varDiskMethod(env = process.env): VarDiskMethod {
  return env.FLEET_VAR_METHOD === 'guestfish' ? 'guestfish' : 'mkfs'
}

/** The folders every /var disk starts with (docs/guest-contract.md). */
export const SKELETON = ['home', 'log', 'log/journal']

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
