// Shared by both ways of writing /var/identity (var-disk.ts: guestfish; var-identity-e2fs.ts:
// no appliance): the names of the swap, and the refusals both give in the same words.
import { UserError } from '../errors.js'
import * as qemuImg from '../adapters/qemu-img.js'

export const VAR_LABEL = 'var'

/** /identity, the new set written beside it, and the old set while it is swapped out. */
export const IDENTITY = '/identity'
export const NEW = '/identity.new'
export const OLD = '/identity.old'

export type Disk = { file: string; identity: Map<string, Buffer> }

/** The hint after a failure part way through the disks. */
export function again(file: string): string {
  return `/var disk ${file} keeps a complete identity (old or new; disks before it have the new one). Fix the cause and run the command again: it finishes the swap.`
}

/** Refuses, naming it, the first disk a process holds open read-write (a running VM). */
export async function refuseLocked(disks: Disk[]): Promise<void> {
  const locked = await inParallel(disks, (d) => qemuImg.isLocked(d.file))
  const i = locked.indexOf(true)
  if (i >= 0) throw inUse(disks[i]!.file)
}

/**
 * `fn` over `items`, at most 4 at a time (spawning tools is most of the cost), results in order.
 * A failure (or Ctrl-C) starts no further item, and is thrown only once the items under way have
 * ended: nothing is still at work when the caller goes on to undo.
 */
export async function inParallel<T, R>(items: T[], fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  let failed: { e: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++
      try {
        out[i] = await fn(items[i]!, i)
      } catch (e) {
        failed ??= { e }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(4, items.length) }, worker))
  if (failed) throw failed.e
  return out
}

export function inUse(file: string): UserError {
  return new UserError(`/var disk ${file} is in use by another process (a running VM?); nothing was written to it`, 'Stop the VM that uses it (fleet stop-vm NAME), then run the command again.')
}

/** Refuses a disk whose filesystem (as blkid names it; '' for none) is not ext4 labelled `var`. */
export function refuseUnlessVar(file: string, type: string, label: string): void {
  if (type !== 'ext4') throw new UserError(`/var disk ${file} holds ${type ? `a ${type} filesystem` : 'no filesystem'}, not ext4 labelled "${VAR_LABEL}"; nothing was written to it`, 'Check that the path points at a VM\'s var.qcow2.')
  if (label !== VAR_LABEL) throw new UserError(`/var disk ${file} is ext4 labelled "${label}", not "${VAR_LABEL}"; nothing was written to it`, 'Check that the path points at a VM\'s var.qcow2.')
}

export function e2fsckRefused(file: string, cause: unknown): UserError {
  const err = new UserError(`/var disk ${file}: e2fsck -f -p found errors it cannot repair safely; nothing was written to it`, `Repair it by hand first (e.g. guestfish -a ${file} run : e2fsck /dev/sda forceall:true), then run the command again.`)
  return Object.assign(err, { cause })
}
