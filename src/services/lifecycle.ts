// define / start / stop / destroy of existing machines.
import { task } from '../util/progress.js'
import { existsSync } from 'node:fs'
import { lstat, realpath, rm } from 'node:fs/promises'
import { basename, dirname, resolve, sep } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import * as libvirt from '../adapters/libvirt.js'
import { UserError } from '../errors.js'
import type { VmName } from '../name.js'
import { loadMachine } from '../machines/repository.js'
import { vmFiles, type Paths } from '../repo.js'
import { olderOverlays } from '../ops/overlays.js'
import { recoverFirst, withVms } from '../ops/vm-op.js'
import type { FleetContext } from './context.js'
import { currentBaseDigest, machineDomain, machineXml, writeXml } from './domain-xml.js'
import { diffDomain, LIFECYCLE_FIELDS } from '../xml/diff-domain.js'
import { parseDomainModel } from '../xml/parse-domain.js'
import { assertOwned } from './ownership.js'
import { defineRemote, destroyRemote, remoteHost, remoteMachine, startRemote, stopRemoteLocked } from './remote-vm.js'

/** --adopt: act on a libvirt domain of that name even if this fleet does not own it (see ownership.ts); default ctx.adopt. */
export interface AdoptOption {
  adopt?: boolean
}

const owned = (ctx: FleetContext, name: VmName, opts: AdoptOption) => assertOwned(ctx.paths, name, { adopt: opts.adopt ?? ctx.adopt, log: ctx.log })

/** Runs `fn` under NAME's lock after resolving an interrupted operation on it; a dry run only reports one and takes no lock. */
async function locked<T>(ctx: FleetContext, name: VmName, fn: () => Promise<T>): Promise<T> {
  if (ctx.dryRun) {
    await recoverFirst(ctx, [name])
    return fn()
  }
  return withVms(ctx, [name], fn)
}

export interface DefineResult {
  name: string
  xml: string
  xmlChanged: boolean
  defined: boolean
}

/** (Re)defines the domain from machines/<name> without touching disks. */
export async function defineVm(ctx: FleetContext, name: VmName, opts: AdoptOption = {}): Promise<DefineResult> {
  return locked(ctx, name, () => defineLocked(ctx, name, opts))
}

async function defineLocked(ctx: FleetContext, name: VmName, opts: AdoptOption): Promise<DefineResult> {
  const m = await loadMachine(ctx.paths, name)
  if (remoteHost(m)) {
    const r = await defineRemote({ ...ctx, adopt: opts.adopt ?? ctx.adopt }, m)
    return { name, xml: r.xml, xmlChanged: r.changed, defined: !ctx.dryRun }
  }
  await owned(ctx, name, opts)
  const files = vmFiles(ctx.paths, name)
  if (!existsSync(files.boot) || !existsSync(files.var)) {
    throw new UserError(`machine ${name}: its disks are missing in ${files.dir}`, `Create them with \`fleet create-vm ${name}\`.`)
  }
  const xml = await machineXml(ctx, m, await currentBaseDigest(ctx.paths, m))
  const w = await writeXml(ctx.paths, name, xml, ctx.dryRun)
  if (!ctx.dryRun) await libvirt.defineXml(xml)
  return { name, xml: w.file, xmlChanged: w.changed, defined: !ctx.dryRun }
}

export interface RedefineResult {
  name: string
  defined: boolean
  /** Changes libvirt applied to the running domain without a restart. */
  appliedLive: string[]
  restarted: boolean
  /** The running domain still runs its old configuration (--no-restart). */
  restartPending: boolean
}

/**
 * Redefines the domain from machines/NAME (disks untouched) and brings a running domain to it:
 * lifecycle actions are changed live, anything else that differs from its running configuration
 * is applied by a graceful restart — or, with `restart: false`, left for the next one. A change
 * libvirt applies live never restarts anything.
 */
export async function redefineVm(ctx: FleetContext, name: VmName, opts: { restart: boolean; timeoutS: number; force: boolean }): Promise<RedefineResult> {
  return locked(ctx, name, async () => {
    const d = await defineLocked(ctx, name, {})
    const r: RedefineResult = { name, defined: d.defined, appliedLive: [], restarted: false, restartPending: false }
    const liveXml = ctx.dryRun ? undefined : await libvirt.domainXml(name)
    if (!liveXml || !(await libvirt.isActive(name))) return r
    const m = await loadMachine(ctx.paths, name)
    const drift = diffDomain(await machineDomain(ctx, m, await currentBaseDigest(ctx.paths, m)), parseDomainModel(liveXml))
    for (const c of drift) {
      if (!(c.field in LIFECYCLE_FIELDS)) continue
      ctx.log(`${name}: ${c.field} ${c.from} → ${c.to} (live)`)
      await libvirt.setLifecycleAction(name, LIFECYCLE_FIELDS[c.field as keyof typeof LIFECYCLE_FIELDS], c.to)
      r.appliedLive.push(c.field)
    }
    if (!drift.some((c) => c.apply === 'restart')) return r
    if (!opts.restart) {
      r.restartPending = true
      return r
    }
    ctx.log(`${name}: restarting for ${drift.filter((c) => c.apply === 'restart').map((c) => c.field).join(', ')}`)
    await stopLocked(ctx, name, { timeoutS: opts.timeoutS, force: opts.force })
    await startVm(ctx, name)
    r.restarted = true
    return r
  })
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

/** Starts the domain. Takes no lock: create-vm calls it under its own (flock is not re-entrant). */
export async function startVm(ctx: FleetContext, name: VmName, opts: AdoptOption = {}): Promise<StateChange> {
  await owned(ctx, name, opts)
  const before = await stateOf(name)
  if (before === 'running' || ctx.dryRun) return { name, before, after: ctx.dryRun ? 'running' : before, dryRun: ctx.dryRun }
  ctx.log(`Starting ${name}`)
  await libvirt.start(name)
  return { name, before, after: (await libvirt.domainState(name)) ?? 'unknown', dryRun: false }
}

/** `fleet start-vm`: startVm under the VM's lock, after resolving an interrupted operation on it. */
export async function startVmLocked(ctx: FleetContext, name: VmName, opts: AdoptOption = {}): Promise<StateChange> {
  const remote = await remoteMachine(ctx.paths, name)
  if (remote) return locked(ctx, name, async () => ({ name, ...(await startRemote({ ...ctx, adopt: opts.adopt ?? ctx.adopt }, remote)), dryRun: ctx.dryRun }))
  return locked(ctx, name, () => startVm(ctx, name, opts))
}

/** Waits until the domain is off; true if it got there within `timeoutMs`. */
export async function waitOff(name: string, timeoutMs: number, uri?: string): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (!(await libvirt.isActive(name, uri))) return true
    if (Date.now() >= deadline) return false
    await sleep(250)
  }
}

/** ACPI shutdown, wait up to `timeoutS`; then destroy if `force`, else a clear error. */
export async function stopVm(ctx: FleetContext, name: VmName, opts: { timeoutS: number; force: boolean } & AdoptOption): Promise<StateChange & { forced: boolean }> {
  const remote = await remoteMachine(ctx.paths, name)
  if (remote) return locked(ctx, name, async () => ({ name, ...(await stopRemoteLocked({ ...ctx, adopt: opts.adopt ?? ctx.adopt }, remote, opts.timeoutS, opts.force)), dryRun: ctx.dryRun }))
  return locked(ctx, name, () => stopLocked(ctx, name, opts))
}

async function stopLocked(ctx: FleetContext, name: VmName, opts: { timeoutS: number; force: boolean } & AdoptOption): Promise<StateChange & { forced: boolean }> {
  await owned(ctx, name, opts)
  const before = await stateOf(name)
  if (!(await libvirt.isActive(name)) || ctx.dryRun) return { name, before, after: ctx.dryRun ? 'shut off' : before, dryRun: ctx.dryRun, forced: false }
  const off = await task(ctx.log, `Shutting down ${name} (ACPI, up to ${opts.timeoutS} s)`, async () => {
    await libvirt.shutdown(name)
    return waitOff(name, opts.timeoutS * 1000)
  })
  let forced = false
  if (!off) {
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

/**
 * The VM's folder, checked to be a real folder directly inside <state>/vms (not a symlink, not
 * elsewhere by any spelling of the name), so destroy never deletes anything outside it.
 */
async function vmDirInside(paths: Paths, name: VmName): Promise<string> {
  const vms = resolve(paths.vms)
  const dir = resolve(vmFiles(paths, name).dir)
  const refuse = (why: string) => new UserError(`machine ${JSON.stringify(name)}: refusing to delete ${dir}: ${why}`, `Only folders directly inside ${vms} are deleted; remove anything else by hand.`)
  if (dirname(dir) !== vms || basename(dir) !== name || name === '.' || name === '..') throw refuse(`not a folder directly inside ${vms}`)
  const st = await lstat(dir).catch(() => undefined)
  if (!st) return dir
  if (!st.isDirectory()) throw refuse(st.isSymbolicLink() ? 'it is a symbolic link' : 'it is not a folder')
  const [realDir, realVms] = await Promise.all([realpath(dir), realpath(vms)])
  if (dirname(realDir) !== realVms) throw refuse(`it resolves to ${realDir}, outside ${realVms}`)
  return dir
}

/** Power off, undefine (with NVRAM), delete the boot overlay; /var stays unless deleteData. Refuses a domain this fleet does not own (unless adopt). */
export async function destroyVm(ctx: FleetContext, name: VmName, opts: { deleteData: boolean; timeoutS: number } & AdoptOption): Promise<DestroyResult> {
  const remote = await remoteMachine(ctx.paths, name)
  if (remote) return locked(ctx, name, async () => ({ name, ...(await destroyRemote({ ...ctx, adopt: opts.adopt ?? ctx.adopt }, remote, opts.deleteData, opts.timeoutS)), dryRun: ctx.dryRun }))
  const files = vmFiles(ctx.paths, name)
  const dir = await vmDirInside(ctx.paths, name)
  // What would go, read inside the lock (a dry run takes none).
  const survey = async () => {
    await owned(ctx, name, opts)
    const state = await libvirt.domainState(name)
    if (!state && !existsSync(dir)) throw new UserError(`machine ${name}: nothing to destroy (no domain, no ${dir})`)
    const deletes = [files.nvram, files.boot, `${files.boot}.previous`, ...(await olderOverlays(files)), ...(opts.deleteData ? [files.var, files.console] : [])]
    for (const f of deletes) if (!f.startsWith(dir + sep)) throw new Error(`bug: ${f} is outside ${dir}`)
    const plan = [
      ...(state ? [`domain ${name}${state === 'shut off' ? '' : ` (${state}, powered off)`}`] : []),
      ...deletes.filter(existsSync),
    ]
    const kept = !opts.deleteData && existsSync(files.var) ? [files.var] : []
    return { state, deletes, plan, kept }
  }
  return locked(ctx, name, async () => {
    const { state, deletes, plan, kept } = await survey()
    if (ctx.dryRun) return { name, removed: plan, kept, dryRun: true }
    if (state) {
      // A graceful stop first so the guest flushes /var; then power off whatever is left.
      if (await libvirt.isActive(name)) {
        ctx.log(`Shutting down ${name} (ACPI, up to ${opts.timeoutS}s)`)
        await libvirt.shutdown(name)
        if (!(await waitOff(name, opts.timeoutS * 1000))) await libvirt.destroy(name)
      }
      await libvirt.undefineWithNvram(name)
    }
    for (const f of deletes) if (existsSync(f)) await rm(f, { force: true })
    if (opts.deleteData) await rm(dir, { recursive: true, force: true })
    return { name, removed: plan, kept, dryRun: false }
  })
}
