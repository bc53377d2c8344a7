// define / start / stop / destroy of existing machines.
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import * as libvirt from '../adapters/libvirt.js'
import { UserError } from '../errors.js'
import type { VmName } from '../name.js'
import { loadMachine } from '../machines/repository.js'
import { vmFiles } from '../repo.js'
import { withLock } from '../util/lock.js'
import type { FleetContext } from './context.js'
import { currentBaseDigest, machineXml, writeXml } from './domain-xml.js'

export interface DefineResult {
  name: string
  xml: string
  xmlChanged: boolean
  defined: boolean
}

/** (Re)defines the domain from machines/<name> without touching disks. */
export async function defineVm(ctx: FleetContext, name: VmName): Promise<DefineResult> {
  const m = await loadMachine(ctx.paths, name)
  const files = vmFiles(ctx.paths, name)
  if (!existsSync(files.boot) || !existsSync(files.var)) {
    throw new UserError(`machine ${name}: its disks are missing in ${files.dir}`, `Create them with \`fleet create-vm ${name}\`.`)
  }
  const xml = await machineXml(ctx, m, await currentBaseDigest(ctx.paths, m))
  const w = await writeXml(ctx.paths, name, xml, ctx.dryRun)
  if (!ctx.dryRun) await libvirt.defineXml(xml)
  return { name, xml: w.file, xmlChanged: w.changed, defined: !ctx.dryRun }
}

export interface StateChange {
  name: string
  before: string
  after: string
  dryRun: boolean
}

async function stateOf(name: string): Promise<libvirt.DomainStateName> {
  const s = await libvirt.domainState(name)
  if (!s) throw new UserError(`machine ${name}: no libvirt domain of that name is defined`, `Define it with \`fleet define-vm ${name}\` or \`fleet create-vm ${name}\`.`)
  return s
}

export async function startVm(ctx: FleetContext, name: VmName): Promise<StateChange> {
  const before = await stateOf(name)
  if (before === 'running' || ctx.dryRun) return { name, before, after: ctx.dryRun ? 'running' : before, dryRun: ctx.dryRun }
  ctx.log(`Starting ${name}`)
  await libvirt.start(name)
  return { name, before, after: (await libvirt.domainState(name)) ?? 'unknown', dryRun: false }
}

/** Waits until the domain is off; true if it got there within `timeoutMs`. */
export async function waitOff(name: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (!(await libvirt.isActive(name))) return true
    if (Date.now() >= deadline) return false
    await sleep(250)
  }
}

/** ACPI shutdown, wait up to `timeoutS`; then destroy if `force`, else a clear error. */
export async function stopVm(ctx: FleetContext, name: VmName, opts: { timeoutS: number; force: boolean }): Promise<StateChange & { forced: boolean }> {
  const before = await stateOf(name)
  if (!(await libvirt.isActive(name)) || ctx.dryRun) return { name, before, after: ctx.dryRun ? 'shut off' : before, dryRun: ctx.dryRun, forced: false }
  ctx.log(`Shutting down ${name} (ACPI, up to ${opts.timeoutS}s)`)
  await libvirt.shutdown(name)
  let forced = false
  if (!(await waitOff(name, opts.timeoutS * 1000))) {
    if (!opts.force) {
      throw new UserError(`machine ${name}: still running ${opts.timeoutS}s after the ACPI shutdown request`, `Wait longer with --timeout, or pass --force to power it off.`)
    }
    ctx.log(`Still running after ${opts.timeoutS}s; destroying ${name}`)
    await libvirt.destroy(name)
    forced = true
  }
  return { name, before, after: (await libvirt.domainState(name)) ?? 'unknown', dryRun: false, forced }
}

export interface DestroyResult {
  name: string
  removed: string[]
  kept: string[]
  dryRun: boolean
}

/** Power off, undefine (with NVRAM), delete the boot overlay; /var stays unless deleteData. */
export async function destroyVm(ctx: FleetContext, name: VmName, opts: { deleteData: boolean; timeoutS: number }): Promise<DestroyResult> {
  const files = vmFiles(ctx.paths, name)
  const state = await libvirt.domainState(name)
  if (!state && !existsSync(files.dir)) {
    throw new UserError(`machine ${name}: nothing to destroy (no domain, no ${files.dir})`)
  }
  const removed: string[] = []
  const kept: string[] = []
  const plan = [
    ...(state ? [`domain ${name}${state === 'shut off' ? '' : ` (${state}, powered off)`}`] : []),
    ...[files.nvram, files.boot, `${files.boot}.previous`].filter(existsSync),
    ...(opts.deleteData ? [files.var, files.console].filter(existsSync) : []),
  ]
  if (!opts.deleteData && existsSync(files.var)) kept.push(files.var)
  if (ctx.dryRun) return { name, removed: plan, kept, dryRun: true }
  return withLock(files.lock, `machine ${name}`, async () => {
    if (state) {
      // A graceful stop first so the guest flushes /var; then power off whatever is left.
      if (await libvirt.isActive(name)) {
        ctx.log(`Shutting down ${name} (ACPI, up to ${opts.timeoutS}s)`)
        await libvirt.shutdown(name)
        if (!(await waitOff(name, opts.timeoutS * 1000))) await libvirt.destroy(name)
      }
      await libvirt.undefineWithNvram(name)
    }
    for (const f of [files.nvram, files.boot, `${files.boot}.previous`, ...(opts.deleteData ? [files.var, files.console] : [])]) {
      if (existsSync(f)) await rm(f, { force: true })
    }
    removed.push(...plan)
    if (opts.deleteData) await rm(files.dir, { recursive: true, force: true })
    return { name, removed, kept, dryRun: false }
  })
}
