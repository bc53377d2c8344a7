// A qcow2 internal snapshot taken before the appliance-free identity sync writes a /var disk.
// debugfs writes without the ext4 journal: a host crash (or a SIGKILL of debugfs itself) in the
// middle can leave errors `e2fsck -p` will not repair. The next sync then finds the snapshot and
// goes back to it — but only if the guest never mounted the filesystem since (the ext4 last-mount
// time is part of the snapshot's name), so no data the guest wrote is ever thrown away.
// Snapshots are taken and dropped through the monitor of the daemon that exports the disks (no
// process per disk), or with qemu-img while no process holds the disk.
import { constants } from 'node:fs'
import { open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { E2fsSession } from '../adapters/e2fs.js'
import * as qemuImg from '../adapters/qemu-img.js'

const PREFIX = 'fleet-identity-sync-'

/** One disk's internal snapshots, and its ext4 superblock, through qemu-img or a running daemon. */
export interface DiskSnapshots {
  file: string
  names(): Promise<string[]>
  create(name: string): Promise<void>
  delete(name: string): Promise<void>
  /** Bytes 1024–2047 of the disk's content (where ext2/3/4 keep their superblock). */
  superblock(work: string): Promise<Buffer>
}

export interface RollbackPoint {
  file: string
  name: string
  /** Left by an earlier sync that did not finish (this run did not take it). */
  leftover: boolean
  via: DiskSnapshots
}

/** The disk's superblock as qemu-img reads it (`-U`: also while the daemon holds the disk). */
async function superblockByQemuImg(file: string, work: string): Promise<Buffer> {
  const head = join(work, 'superblock')
  await qemuImg.readHead(file, 2048, head)
  try {
    return (await readFile(head)).subarray(1024)
  } finally {
    await rm(head, { force: true })
  }
}

/** With qemu-img, one process per step: the disk must not be held by any process. */
export function byQemuImg(file: string): DiskSnapshots {
  return {
    file,
    names: () => qemuImg.snapshots(file),
    create: (name) => qemuImg.snapshot('create', file, name),
    delete: (name) => qemuImg.snapshot('delete', file, name),
    superblock: (work) => superblockByQemuImg(file, work),
  }
}

/** Through the monitor of the session's daemon (disk i); the superblock read from its export. */
export function bySession(s: E2fsSession, i: number, file: string): DiskSnapshots {
  const device = s.node(i)
  const qmp = async (command: string, args: Record<string, unknown>) => (await s.monitor()).execute(command, args)
  return {
    file,
    names: async () => {
      const nodes = (await qmp('query-named-block-nodes', { flat: true })) as { 'node-name': string; image?: { snapshots?: { name: string }[] } }[]
      return (nodes.find((n) => n['node-name'] === device)?.image?.snapshots ?? []).map((x) => x.name)
    },
    create: async (name) => void (await qmp('blockdev-snapshot-internal-sync', { device, name })),
    delete: async (name) => void (await qmp('blockdev-snapshot-delete-internal-sync', { device, name })),
    superblock: async (work) => {
      // The export is the daemon's (root's) mount: fleet reads it itself only when it may.
      const fh = await open(s.image(i), constants.O_RDONLY).catch(() => undefined)
      if (!fh) return superblockByQemuImg(file, work)
      try {
        const sb = Buffer.alloc(1024)
        const { bytesRead } = await fh.read(sb, 0, 1024, 1024)
        return sb.subarray(0, bytesRead)
      } finally {
        await fh.close()
      }
    },
  }
}

/** The ext4 last-mount time (s_mtime with its high byte), or 'none' when the disk holds no ext2/3/4. */
export async function lastMountTime(via: DiskSnapshots, work: string): Promise<string> {
  const sb = await via.superblock(work)
  if (sb.length < 1024 || sb.readUInt16LE(0x38) !== 0xef53) return 'none'
  return String(sb.readUInt8(0x274) * 2 ** 32 + sb.readUInt32LE(0x2c))
}

/** The leftover point of the disk, or a new one taken now. */
export async function takeRollbackPoint(via: DiskSnapshots, work: string): Promise<RollbackPoint> {
  const left = (await via.names()).find((n) => n.startsWith(PREFIX))
  if (left) return { file: via.file, name: left, leftover: true, via }
  const name = `${PREFIX}m${await lastMountTime(via, work)}`
  await via.create(name)
  return { file: via.file, name, leftover: false, via }
}

/** True if going back to `p` loses nothing the guest wrote: the filesystem was not mounted since. */
export async function safeToRevert(p: RollbackPoint, work: string): Promise<boolean> {
  return p.leftover && p.name === `${PREFIX}m${await lastMountTime(p.via, work)}`
}

/** Puts the disk back as it was when the point was taken (the point stays until dropped); no process may hold it. */
export async function revert(p: RollbackPoint): Promise<void> {
  await qemuImg.snapshot('apply', p.file, p.name)
}

export async function drop(p: RollbackPoint): Promise<void> {
  await p.via.delete(p.name)
}
