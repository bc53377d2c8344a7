// The boot overlay renames of upgrade and rollback, each resumable from any point a kill -9 can
// leave: boot.qcow2 (current), .previous (the newest rollback point), .old-<ms> (older rollback
// points, --keep), .next (upgrade), .swap (rollback).
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { VmFiles } from '../repo.js'
import { renameDurable, unlinkDurable } from '../util/fsx.js'

export const nextOverlay = (f: VmFiles) => `${f.boot}.next`
export const previousOverlay = (f: VmFiles) => `${f.boot}.previous`
/** An older rollback point; the number (ms since the epoch when it was parked) orders them. */
export const olderOverlay = (f: VmFiles, ms: number) => `${f.boot}.old-${ms}`

/** Rollback points besides .previous, oldest first. */
export async function olderOverlays(files: VmFiles): Promise<string[]> {
  const dir = dirname(files.boot)
  if (!existsSync(dir)) return []
  const prefix = `${basename(files.boot)}.old-`
  return (await readdir(dir))
    .filter((f) => f.startsWith(prefix) && /^\d+$/.test(f.slice(prefix.length)))
    .sort((a, b) => Number(a.slice(prefix.length)) - Number(b.slice(prefix.length)))
    .map((f) => join(dir, f))
}

/** Every rollback point, newest first: .previous, then the older ones. */
export async function rollbackPoints(files: VmFiles): Promise<string[]> {
  return [...(existsSync(previousOverlay(files)) ? [previousOverlay(files)] : []), ...(await olderOverlays(files)).reverse()]
}

/**
 * boot.qcow2.next → boot.qcow2, the old one → .previous, and the .previous before it kept as an
 * .old-<ms> rollback point. Resumable at any point: each rename happens only while its source
 * exists and its place is free.
 */
export async function switchOverlays(files: VmFiles): Promise<void> {
  const next = nextOverlay(files)
  if (!existsSync(next)) return // done (or never started)
  if (existsSync(files.boot)) {
    if (existsSync(previousOverlay(files))) await renameDurable(previousOverlay(files), olderOverlay(files, Date.now()))
    await renameDurable(files.boot, previousOverlay(files))
  }
  await renameDurable(next, files.boot)
}

/** Deletes the oldest rollback points beyond `keep` (counting .previous). Any point is a fine place to stop. */
export async function pruneOverlays(files: VmFiles, keep: number): Promise<string[]> {
  const older = await olderOverlays(files)
  const extra = older.length + (existsSync(previousOverlay(files)) ? 1 : 0) - Math.max(1, keep)
  const gone = older.slice(0, Math.max(0, extra))
  for (const f of gone) await unlinkDurable(f)
  return gone
}

/** Swaps boot.qcow2 and .previous through .swap; resumable at any point. */
export async function finishSwap(files: VmFiles): Promise<void> {
  const swap = `${files.boot}.swap`
  const prev = previousOverlay(files)
  if (!existsSync(swap)) return
  if (!existsSync(files.boot)) await renameDurable(prev, files.boot)
  await renameDurable(swap, prev)
}

/**
 * Makes an older rollback point the .previous (the one a rollback swaps in), parking the current
 * .previous as `parkAs`. Resumable: once `target` is gone, it is done.
 */
export async function promoteOverlay(files: VmFiles, target: string, parkAs: string): Promise<void> {
  if (!existsSync(target) || target === previousOverlay(files)) return
  if (existsSync(previousOverlay(files))) await renameDurable(previousOverlay(files), parkAs)
  await renameDurable(target, previousOverlay(files))
}
