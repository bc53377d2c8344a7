// What each interrupted operation's intent record means, and how it is resolved. Every step
// here looks at what is really on disk and in libvirt, so running it twice is harmless.
//   create   → rolled back: everything the run made is removed (nothing existed before it:
//              the checks ran inside the lock, before the record was written).
//   upgrade  → before the identity resync: rolled back (new overlay removed, VM restarted if it
//              ran); from the resync on: rolled forward (resync again, switch, define, start).
//              On a remote host: finished there (remote-upgrade-recovery.ts).
//   rollback → the overlay swap is finished (or carried out, if not begun) and the domain defined
//              for the overlay in place; a VM a rolling upgrade was rolling back is started again.
import { existsSync } from 'node:fs'
import { readdir, rm, rmdir } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import * as libvirt from '../adapters/libvirt.js'
import { UserError } from '../errors.js'
import type { VmName } from '../name.js'
import { vmFiles } from '../repo.js'
import type { FleetContext } from '../services/context.js'
import { xmlPath } from '../services/domain-xml.js'
import { overlayBaseDigest } from '../store/images.js'
import { renameDurable, unlinkDurable, writeFileAtomic } from '../util/fsx.js'
import { Undo } from '../util/undo.js'
import { rollForwardUpgrade } from '../services/upgrade-switch.js'
import type { IntentHandle } from './intent.js'
import { remoteCreateUndo, remoteMachine } from '../services/remote-vm.js'
import { isRemoteUpgrade, recoverRemoteUpgrade } from '../services/remote-upgrade-recovery.js'
import { finishSwap, nextOverlay, previousOverlay, promoteOverlay } from './overlays.js'

export interface CreateData {
  /** machines/NAME was written by this run (and so is removed on rollback). */
  newDefinition: boolean
  /** libvirt/NAME.xml before the run (null: there was none). */
  xmlBefore: string | null
  /** console.log was there before the run (kept: it is the old VM's log). */
  consoleBefore: boolean
  /** The VM's kept /var disk was there before the run and is reused: it is never removed. */
  varBefore: boolean
  /** vms/NAME/ was there before the run (it holds the kept /var disk): not removed. */
  dirBefore?: boolean
  /** A VM on a remote host: whether its (complete) /var volume was there before the run (then it is kept). */
  remote?: { varBefore: boolean }
}

/** The undo of a create-vm: idempotent, and only what exists is listed. */
export async function undoCreate(ctx: FleetContext, name: VmName, data: CreateData): Promise<Undo> {
  const { paths } = ctx
  const files = vmFiles(paths, name)
  const undo = new Undo()
  const rmFile = (f: string) => () => unlinkDurable(f)
  if (data.newDefinition && existsSync(join(paths.machines, name))) {
    undo.add(`definition ${join(paths.machines, name)}`, () => rm(join(paths.machines, name), { recursive: true, force: true }))
  }
  const xml = xmlPath(paths, name)
  if (data.xmlBefore === null && existsSync(xml)) undo.add(`XML ${xml}`, rmFile(xml))
  if (data.xmlBefore !== null) undo.add(`XML ${xml} (restored)`, () => writeFileAtomic(xml, data.xmlBefore!))
  if (existsSync(files.dir) && !data.dirBefore) {
    undo.add(`folder ${files.dir}`, async () => {
      if (existsSync(files.dir) && !(await readdir(files.dir)).length) await rmdir(files.dir)
    })
  }
  const kept = data.varBefore ? [files.var, join(files.dir, 'identity.json')] : []
  for (const f of [files.boot, files.var, join(files.dir, 'identity.json'), files.nvram, ...(data.consoleBefore ? [] : [files.console])].filter((f) => !kept.includes(f))) {
    if (existsSync(f)) undo.add(f === files.var ? `/var disk ${f}` : f === files.boot ? `boot overlay ${f}` : f, rmFile(f))
  }
  // On a remote host: what this run made there (read now, while machines/NAME still names the host).
  const remote = data.remote && (await remoteMachine(paths, name))
  if (remote) for (const s of await remoteCreateUndo(remote, data.remote!.varBefore)) undo.add(s.what, s.run)
  // Defined by this run: nothing of that name existed when it started (checked under the lock).
  else if (await libvirt.domainState(name)) {
    undo.add(`domain ${name}`, async () => {
      await libvirt.destroy(name)
      await libvirt.undefineWithNvram(name)
    })
  }
  return undo
}

export async function recoverCreate(ctx: FleetContext, name: VmName, intent: IntentHandle<CreateData>): Promise<string[]> {
  const undo = await undoCreate(ctx, name, intent.data)
  await undo.rollback()
  if (undo.leftBehind.length) {
    throw new UserError(`machine ${name}: could not roll back the interrupted create-vm: ${undo.leftBehind.join('; ')}`, 'Fix the cause (see the message) and run the command again; the intent record stays until then.')
  }
  await intent.done()
  return [`rolled back the interrupted create-vm (removed ${undo.removed.join(', ') || 'nothing'})`]
}

export interface UpgradeData {
  wasRunning: boolean
  from: string
  to: string
  /** A new boot overlay (boot.qcow2.next) replaces boot.qcow2; false when only identity/XML change. */
  newOverlay: boolean
  /** /var/identity is resynced (from machines/NAME, read again on recovery: no keys in here). */
  identityChanged: boolean
  manifest: Record<string, string>
  xml: string
  oldXml: string | null
  /** Rollback points to keep after the switch, .previous included (default 2). */
  keep?: number
  /** When the run asked the VM to shut down (ms since the epoch), and how long it meant to wait. */
  stopRequestedAt?: number
  stopTimeoutS?: number
  /** The run was about to power the VM off (--force): a destroy may still be in flight. */
  destroying?: boolean
}

/** How long a destroy already sent to libvirtd can take (it SIGKILLs qemu after 10 s). */
const DESTROY_SETTLE_MS = 15_000

/**
 * A run killed while stopping the VM may have left a request in flight: a destroy libvirtd is
 * still carrying out, or an ACPI shutdown the guest is acting on. Deciding "it runs, leave it"
 * before that lands would leave a VM off that ran before. Wait until it is off (then the caller
 * restarts it) or until the run's own wait would have ended (the guest ignored the request).
 */
async function settleInterruptedStop(ctx: FleetContext, name: VmName, d: UpgradeData): Promise<void> {
  if (!d.wasRunning || d.stopRequestedAt === undefined || !(await libvirt.isActive(name))) return
  const now = Date.now()
  const askedUntil = Math.min(d.stopRequestedAt, now) + (d.stopTimeoutS ?? 0) * 1000
  const deadline = Math.max(d.destroying ? now + DESTROY_SETTLE_MS : 0, Math.min(askedUntil, now + (d.stopTimeoutS ?? 0) * 1000))
  if (deadline <= now) return
  ctx.log(`machine ${name}: the interrupted upgrade asked it to ${d.destroying ? 'power off' : 'shut down'}; waiting up to ${Math.ceil((deadline - now) / 1000)}s to see whether it does`)
  while (Date.now() < deadline && (await libvirt.isActive(name))) await sleep(250)
}

export async function recoverUpgrade(ctx: FleetContext, name: VmName, intent: IntentHandle<UpgradeData>): Promise<string[]> {
  if (isRemoteUpgrade(intent.data)) return recoverRemoteUpgrade(ctx, name, intent as never)
  const files = vmFiles(ctx.paths, name)
  const d = intent.data
  if (intent.intent.phase === 'stopping' || intent.intent.phase === 'prepared') {
    await rm(nextOverlay(files), { force: true })
    if (intent.intent.phase === 'stopping') await settleInterruptedStop(ctx, name, d)
    if (d.wasRunning) await libvirt.ensureRunning(name)
    await intent.done()
    return [`rolled back the interrupted upgrade: still on ${d.from.slice(0, 12)}${d.wasRunning ? ', restarted' : ''}`]
  }
  const what = await rollForwardUpgrade(ctx, name, intent)
  await intent.done()
  return [what]
}

export interface RollbackData {
  /** Digest of boot.qcow2 before the rollback, and of .previous (the one it goes back to). */
  from: string
  to: string
  /** XML for each side: `to` is the target. */
  xmlTo: string
  xmlFrom: string
  /** A rolling upgrade's rollback of a running VM: stopped first, started again at the end. */
  start?: boolean
  /** rollback --to an older rollback point: it becomes .previous first, today's .previous parked as `parkAs`. */
  promote?: { target: string; parkAs: string }
}

/**
 * Finished, whatever step the kill hit: a swap not begun yet is carried out (the running VM of a
 * rolling upgrade's rollback powered off first), a swap begun is completed, the domain is
 * defined for the overlay in place, and a VM that ran is started again.
 */
export async function recoverRollback(ctx: FleetContext, name: VmName, intent: IntentHandle<RollbackData>): Promise<string[]> {
  const files = vmFiles(ctx.paths, name)
  const d = intent.data
  const swap = `${files.boot}.swap`
  if (d.promote && !existsSync(swap)) await promoteOverlay(files, d.promote.target, d.promote.parkAs)
  if (d.from !== d.to && !existsSync(swap) && existsSync(files.boot) && existsSync(previousOverlay(files)) && (await overlayBaseDigest(ctx.paths, files.boot)) === d.from) {
    if (d.start) await libvirt.destroy(name)
    await renameDurable(files.boot, swap)
  }
  await finishSwap(files)
  const on = await overlayBaseDigest(ctx.paths, files.boot)
  const xml = on === d.to ? d.xmlTo : d.xmlFrom
  await writeFileAtomic(xmlPath(ctx.paths, name), xml)
  await libvirt.defineXml(xml)
  if (d.start) await libvirt.ensureRunning(name)
  await intent.done()
  return [`finished the interrupted rollback: on ${(on ?? 'unknown').slice(0, 12)}${d.start ? ', running' : ''}`]
}
