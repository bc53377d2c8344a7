// A qcow2 internal snapshot taken before the appliance-free identity sync writes a /var disk.
// debugfs writes without the ext4 journal: a host crash (or a SIGKILL of debugfs itself) in the
// middle can leave errors `e2fsck -p` will not repair. The next sync then finds the snapshot and
// goes back to it — but only if the guest never mounted the filesystem since (the ext4 last-mount
// time is part of the snapshot's name), so no data the guest wrote is ever thrown away.
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import * as qemuImg from '../adapters/qemu-img.js'

const PREFIX = 'fleet-identity-sync-'

export interface RollbackPoint {
  file: string
  name: string
  /** Left by an earlier sync that did not finish (this run did not take it). */
  leftover: boolean
}

/** The ext4 last-mount time (s_mtime with its high byte) read from the image, or 'none' when it holds no ext2/3/4. */
export async function lastMountTime(file: string, work: string): Promise<string> {
  const head = join(work, 'superblock')
  await qemuImg.readHead(file, 2048, head)
  try {
    const sb = (await readFile(head)).subarray(1024)
    if (sb.length < 1024 || sb.readUInt16LE(0x38) !== 0xef53) return 'none'
    return String(sb.readUInt8(0x274) * 2 ** 32 + sb.readUInt32LE(0x2c))
  } finally {
    await rm(head, { force: true })
  }
}

/** The leftover point of `file`, or a new one taken now. */
export async function takeRollbackPoint(file: string, work: string): Promise<RollbackPoint> {
  const left = (await qemuImg.snapshots(file)).find((n) => n.startsWith(PREFIX))
  if (left) return { file, name: left, leftover: true }
  const name = `${PREFIX}m${await lastMountTime(file, work)}`
  await qemuImg.snapshot('create', file, name)
  return { file, name, leftover: false }
}

/** True if going back to `p` loses nothing the guest wrote: the filesystem was not mounted since. */
export async function safeToRevert(p: RollbackPoint, work: string): Promise<boolean> {
  return p.leftover && p.name === `${PREFIX}m${await lastMountTime(p.file, work)}`
}

/** Puts the disk back as it was when the point was taken (the point stays until dropped). */
export async function revert(p: RollbackPoint): Promise<void> {
  await qemuImg.snapshot('apply', p.file, p.name)
}

export async function drop(p: RollbackPoint): Promise<void> {
  await qemuImg.snapshot('delete', p.file, p.name)
}
