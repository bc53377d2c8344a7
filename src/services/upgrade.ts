// fleet upgrade: for each VM, stop it, resync /var/identity exactly (all disks in ONE guestfish
// launch), put a new boot overlay on the channel's current image beside the old one, switch,
// keep the old one for rollback, redefine with the same UUID/MAC/NVRAM, restart if it ran.
import type { VmName } from '../name.js'
import { existsSync } from 'node:fs'
import { readFile, rename, rm } from 'node:fs/promises'
import { deviceOf, runGuestfish, type GfCommand } from '../adapters/guestfish.js'
import * as libvirt from '../adapters/libvirt.js'
import * as qemuImg from '../adapters/qemu-img.js'
import { UserError } from '../errors.js'
import type { Machine } from '../machines/model.js'
import { listMachineNames, loadMachine, readIdentity } from '../machines/repository.js'
import { vmFiles, type VmFiles } from '../repo.js'
import { overlayBaseDigest, resolveChannel } from '../store/images.js'
import { withLock } from '../util/lock.js'
import type { FleetContext } from './context.js'
import { currentBaseDigest, machineXml, writeXml, xmlPath } from './domain-xml.js'
import { diffManifest, manifestOf, readManifest, writeManifest, type IdentityDiff } from './identity-manifest.js'
import { waitOff } from './lifecycle.js'
import { identityCommands } from './var-disk.js'

export interface UpgradePlan {
  name: string
  baseFrom: string
  baseTo: string
  identity: IdentityDiff
  xmlChanged: boolean
  xmlDiff: string[]
  wasRunning: boolean
}

export interface UpgradeResult {
  dryRun: boolean
  vms: (UpgradePlan & { restarted: boolean })[]
  timings: Record<string, number>
}

function lineDiff(a: string, b: string): string[] {
  const al = a.split('\n')
  const bl = b.split('\n')
  const out: string[] = []
  for (const l of al) if (!bl.includes(l)) out.push(`- ${l}`)
  for (const l of bl) if (!al.includes(l)) out.push(`+ ${l}`)
  return out
}

async function plan(ctx: FleetContext, m: Machine): Promise<{ plan: UpgradePlan; files: VmFiles; identity: Map<string, Buffer>; xml: string; image: string }> {
  const files = vmFiles(ctx.paths, m.name)
  if (!existsSync(files.boot) || !existsSync(files.var)) throw new UserError(`machine ${m.name}: no disks in ${files.dir}`, `Create the VM first: fleet create-vm ${m.name}`)
  const image = await resolveChannel(ctx.paths, m.base, m.name, m.arch)
  const identity = await readIdentity(m)
  const baseFrom = await currentBaseDigest(ctx.paths, m)
  const xml = await machineXml(ctx, m, image.digest)
  const oldXml = existsSync(xmlPath(ctx.paths, m.name)) ? await readFile(xmlPath(ctx.paths, m.name), 'utf8') : ''
  return {
    files, identity, xml, image: image.path,
    plan: {
      name: m.name, baseFrom, baseTo: image.digest,
      identity: diffManifest(await readManifest(files.dir), manifestOf(identity)),
      xmlChanged: oldXml !== xml, xmlDiff: lineDiff(oldXml, xml),
      wasRunning: await libvirt.isActive(m.name),
    },
  }
}

export async function upgrade(ctx: FleetContext, names: string[], opts: { all: boolean; timeoutS: number; force: boolean }): Promise<UpgradeResult> {
  const list = opts.all ? await listMachineNames(ctx.paths) : names
  if (!list.length) throw new UserError('name the machines to upgrade, or pass --all')
  const machines = await Promise.all(list.map((n) => loadMachine(ctx.paths, n)))
  const plans = await Promise.all(machines.map((m) => plan(ctx, m)))
  const timings: Record<string, number> = {}
  if (ctx.dryRun) return { dryRun: true, vms: plans.map((p) => ({ ...p.plan, restarted: false })), timings }

  // Lock every VM of the batch (sorted, so two batches cannot deadlock), then work.
  const locked = [...plans].sort((a, b) => a.plan.name.localeCompare(b.plan.name))
  const run = async (i: number): Promise<UpgradeResult> =>
    i < locked.length ? withLock(locked[i]!.files.lock, `machine ${locked[i]!.plan.name}`, () => run(i + 1)) : doUpgrade(ctx, plans, opts, timings)
  return run(0)
}

async function doUpgrade(ctx: FleetContext, plans: Awaited<ReturnType<typeof plan>>[], opts: { timeoutS: number; force: boolean }, timings: Record<string, number>): Promise<UpgradeResult> {
  let t0 = performance.now()
  for (const p of plans) {
    if (!p.plan.wasRunning) continue
    ctx.log(`Shutting down ${p.plan.name} (ACPI, up to ${opts.timeoutS}s)`)
    await libvirt.shutdown(p.plan.name)
  }
  for (const p of plans) {
    if (!p.plan.wasRunning || (await waitOff(p.plan.name, opts.timeoutS * 1000))) continue
    if (!opts.force) throw new UserError(`machine ${p.plan.name}: still running ${opts.timeoutS}s after the shutdown request; nothing was changed`, 'Pass --force to power it off, or a longer --timeout.')
    await libvirt.destroy(p.plan.name)
  }
  for (const p of plans) {
    if (await qemuImg.isLocked(p.files.var)) throw new UserError(`machine ${p.plan.name}: ${p.files.var} is in use by another process; nothing was changed`)
  }
  timings.shutdown = Math.round(performance.now() - t0)

  // New overlays beside the old ones; nothing switches until identity is written.
  t0 = performance.now()
  const next = (p: (typeof plans)[number]) => `${p.files.boot}.next`
  try {
    for (const p of plans) {
      await rm(next(p), { force: true })
      await qemuImg.createOverlay(next(p), p.image)
    }
    timings.overlays = Math.round(performance.now() - t0)
    t0 = performance.now()
    const staged = await Promise.all(plans.map((p) => identityCommands(p.identity)))
    try {
      const commands: GfCommand[] = plans.flatMap((_, i) => [['mount', deviceOf(i), '/'], ...staged[i]!.commands, ['umount', '/']])
      ctx.log(`Resyncing identity on ${plans.length} /var disk(s) in one guestfish launch`)
      await runGuestfish(plans.map((p) => p.files.var), commands)
    } finally {
      await Promise.all(staged.map((s) => s.cleanup()))
    }
    timings.identity = Math.round(performance.now() - t0)
  } catch (e) {
    await Promise.all(plans.map((p) => rm(next(p), { force: true })))
    const restarted = []
    for (const p of plans) if (p.plan.wasRunning) restarted.push(await libvirt.start(p.plan.name).then(() => p.plan.name, () => undefined))
    throw new UserError(`upgrade failed before any VM was switched: ${(e as Error).message}`, `All VMs stay on their old overlays${restarted.filter(Boolean).length ? ` (restarted: ${restarted.filter(Boolean).join(', ')})` : ''}. Fix the cause and run the upgrade again.`)
  }

  t0 = performance.now()
  const out: UpgradeResult['vms'] = []
  for (const p of plans) {
    await writeManifest(p.files.dir, manifestOf(p.identity))
    if (existsSync(p.files.boot)) await rename(p.files.boot, `${p.files.boot}.previous`)
    await rename(next(p), p.files.boot)
    await writeXml(ctx.paths, p.plan.name, p.xml)
    await libvirt.defineXml(p.xml)
    let restarted = false
    if (p.plan.wasRunning) {
      await libvirt.start(p.plan.name)
      restarted = true
    }
    ctx.log(`${p.plan.name}: ${p.plan.baseFrom.slice(0, 12)} → ${p.plan.baseTo.slice(0, 12)}`)
    out.push({ ...p.plan, restarted })
  }
  timings.switch = Math.round(performance.now() - t0)
  return { dryRun: false, vms: out, timings }
}

export interface RollbackResult {
  name: string
  baseFrom: string
  baseTo: string
  dryRun: boolean
}

/** Swaps the current and previous boot overlays; /var is not touched. */
export async function rollback(ctx: FleetContext, name: VmName): Promise<RollbackResult> {
  const m = await loadMachine(ctx.paths, name)
  const files = vmFiles(ctx.paths, name)
  const prev = `${files.boot}.previous`
  if (!existsSync(prev)) throw new UserError(`machine ${name}: no previous boot overlay to roll back to`, 'Rollback works after an upgrade.')
  const from = await currentBaseDigest(ctx.paths, m)
  const to = (await overlayBaseDigest(ctx.paths, prev)) ?? 'unknown'
  if (ctx.dryRun) return { name, baseFrom: from, baseTo: to, dryRun: true }
  return withLock(files.lock, `machine ${name}`, async () => {
    if (await libvirt.isActive(name)) throw new UserError(`machine ${name}: is running`, `Stop it first: fleet stop-vm ${name}`)
    const tmp = `${files.boot}.swap`
    await rename(files.boot, tmp)
    await rename(prev, files.boot)
    await rename(tmp, prev)
    const xml = await machineXml(ctx, m, to)
    await writeXml(ctx.paths, name, xml)
    await libvirt.defineXml(xml)
    return { name, baseFrom: from, baseTo: to, dryRun: false }
  })
}
