// The boot overlay renames of upgrade and rollback, each resumable from any point a kill -9 can
// leave: boot.qcow2 (current), .previous (the rollback point), .next (upgrade), .swap (rollback).
import { existsSync } from 'node:fs'
import type { VmFiles } from '../repo.js'
import { renameDurable } from '../util/fsx.js'

export const nextOverlay = (f: VmFiles) => `${f.boot}.next`
export const previousOverlay = (f: VmFiles) => `${f.boot}.previous`

/** boot.qcow2.next → boot.qcow2, the old one → .previous. Resumable at any point. */
export async function switchOverlays(files: VmFiles): Promise<void> {
  const next = nextOverlay(files)
  if (!existsSync(next)) return // done (or never started)
  if (existsSync(files.boot)) await renameDurable(files.boot, previousOverlay(files))
  await renameDurable(next, files.boot)
}

/** Swaps boot.qcow2 and .previous through .swap; resumable at any point. */
export async function finishSwap(files: VmFiles): Promise<void> {
  const swap = `${files.boot}.swap`
  const prev = previousOverlay(files)
  if (!existsSync(swap)) return
  if (!existsSync(files.boot)) await renameDurable(prev, files.boot)
  await renameDurable(swap, prev)
}
