// A VM on a remote libvirt host (machine.json "host" = qemu+ssh://…): its disks are volumes of
// fleet's pool there (remote-disks.ts), its /var identity is written by e2fsprogs run there
// (remote-var.ts), its lock is held there (hosts/remote-lock.ts). Fleet keeps only its own
// records locally (machines/NAME, libvirt/NAME.xml).
import { dirname } from 'node:path'
import * as libvirt from '../adapters/libvirt.js'
import { step } from '../util/interrupt.js'
import * as pool from '../adapters/storage-pool.js'
import { tryRunOn } from '../adapters/remote-shell.js'
import { UserError } from '../errors.js'
import { hostLabel, isRemote, vmHost } from '../hosts/host-uri.js'
import { withRemoteLock } from '../hosts/remote-lock.js'
import type { Machine } from '../machines/model.js'
import { loadMachine } from '../machines/repository.js'
import type { Paths } from '../repo.js'
import { resolveChannel, type StoredImage } from '../store/images.js'
import { waitOff } from './lifecycle.js'
import { assertOwned, type Ownership } from './ownership.js'
import { vmName } from '../name.js'
import { parseDomain, serializeDomain } from '../xml/serialize.js'
import type { FleetContext } from './context.js'
import { machineDomain, writeXml } from './domain-xml.js'
import { bootVolume, bootVolumeOn, hostFull, isBootOf, upgradeRunningMarker, varMarker, varVolume, vmVolumes, type RemoteHost } from './remote-disks.js'
import { createRemoteVar, resyncRemoteVar } from './remote-var.js'
import { forgetRemoteIdentity, recordRemoteIdentity } from './remote-drift.js'

/** The machine's host if it is a remote one. */
export function remoteHost(m: Pick<Machine, 'host'>): RemoteHost | undefined {
  const h = vmHost(m.host)
  return isRemote(h) ? h : undefined
}

export const consoleLogName = (name: string) => `${name}.console.log`

/** The domain XML of a remote VM: its disks are the pool's volumes, its NVRAM in libvirt's own folder there. */
export async function remoteXmlOn(ctx: FleetContext, m: Machine, digest: string, boot: pool.Volume, varPath: string): Promise<string> {
  const d = await machineDomain(ctx, m, digest)
  d.os.nvram = { template: d.os.nvram.template }
  d.devices.disks = [
    { source: boot.path, target: 'vda', readonly: true, driverType: 'qcow2' },
    { source: varPath, target: 'vdb', readonly: false, driverType: 'raw' },
  ]
  d.devices.serial = { log: `${dirname(varPath)}/${consoleLogName(m.name)}` }
  return serializeDomain(d)
}

/**
 * Refuses (exit 2) a domain of the VM's name on its host that is not this fleet's, as for a local
 * one; --adopt (opts.adopt, default ctx.adopt) lets it through. Reads only.
 */
export async function assertRemoteOwned(ctx: Pick<FleetContext, 'paths' | 'adopt' | 'log'>, m: Machine, opts: { adopt?: boolean } = {}): Promise<Ownership> {
  return assertOwned(ctx.paths, vmName(m.name), { adopt: opts.adopt ?? ctx.adopt, log: ctx.log, uri: remoteHost(m)!.uri })
}

/**
 * The domain XML fleet would define for a remote VM now: machines/NAME with the volumes it has
 * there (the boot overlay of the base its domain runs, else of its channel's image). Reads only.
 */
export async function remoteXmlNow(ctx: FleetContext, m: Machine): Promise<string> {
  const host = remoteHost(m)!
  const live = await libvirt.domainXml(m.name, true, host.uri)
  const digest = (live && parseDomain(live).base?.digest) || (await resolveChannel(ctx.paths, m.base, m.name, m.arch)).digest
  const boot = await pool.volume(host.uri, bootVolume(m.name, digest))
  const varVol = await pool.volume(host.uri, varVolume(m.name))
  if (!boot || !varVol) {
    throw new UserError(`machine ${m.name}: its ${!boot ? `boot overlay ${bootVolume(m.name, digest)}` : `/var volume ${varVolume(m.name)}`} is missing on ${host.uri}`, `Create the VM there with \`fleet create-vm ${m.name}\` (a kept /var volume is reused).`)
  }
  return remoteXmlOn(ctx, m, digest, boot, varVol.path)
}

/** define-vm of a remote VM: (re)defined there from machines/NAME on the volumes it has, under its host-side lock. */
export async function defineRemote(ctx: FleetContext, m: Machine): Promise<{ xml: string; changed: boolean }> {
  const host = remoteHost(m)!
  return withRemoteLock(host.ssh, m.name, async () => {
    await assertRemoteOwned(ctx, m)
    const xml = await remoteXmlNow(ctx, m)
    const w = await writeXml(ctx.paths, m.name, xml, ctx.dryRun)
    if (!ctx.dryRun) await libvirt.defineXml(xml, host.uri)
    return { xml: w.file, changed: w.changed }
  })
}

/** ACPI shutdown, then power off after `timeoutS` if `force` (else a clear error). */
export async function stopRemote(ctx: FleetContext, m: Machine, host: RemoteHost, timeoutS: number, force: boolean): Promise<boolean> {
  if (!(await libvirt.isActive(m.name, host.uri))) return false
  ctx.log(`Shutting down ${m.name} on ${host.ssh.host} (ACPI, up to ${timeoutS} s)`)
  await libvirt.shutdown(m.name, host.uri)
  if (await waitOff(m.name, timeoutS * 1000, host.uri)) return false
  if (!force) throw new UserError(`machine ${m.name}: still running ${timeoutS}s after the ACPI shutdown request`, 'Wait longer with --timeout, or pass --force to power it off.')
  await libvirt.destroy(m.name, host.uri)
  return true
}

export interface RemoteCreated {
  boot: string
  var: string
  varReused: boolean
  xml: string
}

/**
 * Creates the VM on its host under the host-side lock: base shipped (once per digest), boot
 * overlay volume, /var volume with identity (a kept one is reused and resynced), define, start.
 * A failure removes the volumes and domain this run made.
 */
export async function createRemote(ctx: FleetContext, m: Machine, identity: Map<string, Buffer>, image: StoredImage, start: boolean): Promise<RemoteCreated> {
  const host = remoteHost(m)!
  return withRemoteLock(host.ssh, m.name, async () => {
    if (await libvirt.domainState(m.name, host.uri)) throw new UserError(`machine ${m.name}: a libvirt domain named ${m.name} already exists on ${host.uri}`, `Use \`fleet start-vm ${m.name}\`, or \`fleet destroy-vm ${m.name}\` first (it keeps /var).`)
    const made: string[] = []
    let defined = false
    try {
      const have = await vmVolumes(host, m.name)
      const bootName = bootVolume(m.name, image.digest)
      if (!have.boots.includes(bootName)) made.push(bootName)
      const boot = await bootVolumeOn(host, m.name, image, ctx.log)
      // A /var volume without its marker is what a killed create left (never booted): made again.
      if (have.var && !have.varComplete) await pool.deleteVolume(host.uri, have.var)
      let varVol = have.var && have.varComplete ? await pool.volume(host.uri, have.var) : undefined
      if (varVol) {
        ctx.log(`Reusing the kept /var volume ${varVol.name} on ${host.ssh.host}; resyncing its identity`)
        await resyncRemoteVar(host.ssh, varVol.path, identity)
      } else {
        ctx.log(`Creating /var volume (${m.varSize}) with identity on ${host.ssh.host}`)
        varVol = await pool.createVolume(host.uri, varVolume(m.name), m.varSizeBytes, 'raw')
        made.push(varVol.name)
        await createRemoteVar(host.ssh, varVol.path, m.varSizeBytes, identity)
        await pool.createVolume(host.uri, varMarker(m.name), 1, 'raw')
        made.push(varMarker(m.name))
      }
      const xml = await remoteXmlOn(ctx, m, image.digest, boot, varVol.path)
      ctx.log(`Defining domain ${m.name} on ${host.uri}`)
      await libvirt.defineXml(xml, host.uri)
      defined = true
      await recordRemoteIdentity(ctx.paths, m.name, identity)
      if (start) {
        ctx.log(`Starting ${m.name} on ${host.ssh.host}`)
        await libvirt.start(m.name, host.uri)
      }
      return { boot: boot.path, var: varVol.path, varReused: !made.includes(varVol.name), xml }
    } catch (e) {
      if (defined) await libvirt.destroy(m.name, host.uri).then(() => libvirt.undefineWithNvram(m.name, host.uri)).catch(() => {})
      for (const v of made.reverse()) await pool.deleteVolume(host.uri, v).catch(() => {})
      throw hostFull(e, m.name, host) ?? e
    }
  })
}

export async function startRemote(ctx: FleetContext, m: Machine): Promise<{ before: string; after: string }> {
  const host = remoteHost(m)!
  return withRemoteLock(host.ssh, m.name, async () => {
    const before = await libvirt.domainState(m.name, host.uri)
    if (!before) throw new UserError(`machine ${m.name}: no libvirt domain of that name is defined on ${host.uri}`, `Create it with \`fleet create-vm ${m.name}\`.`)
    await assertRemoteOwned(ctx, m)
    if (before !== 'running' && !ctx.dryRun) {
      ctx.log(`Starting ${m.name} on ${host.ssh.host}`)
      await libvirt.start(m.name, host.uri)
    }
    return { before, after: ctx.dryRun ? 'running' : ((await libvirt.domainState(m.name, host.uri)) ?? 'unknown') }
  })
}

export async function stopRemoteLocked(ctx: FleetContext, m: Machine, timeoutS: number, force: boolean): Promise<{ before: string; after: string; forced: boolean }> {
  const host = remoteHost(m)!
  return withRemoteLock(host.ssh, m.name, async () => {
    const before = await libvirt.domainState(m.name, host.uri)
    if (!before) throw new UserError(`machine ${m.name}: no libvirt domain of that name is defined on ${host.uri}`)
    await assertRemoteOwned(ctx, m)
    const forced = ctx.dryRun ? false : await stopRemote(ctx, m, host, timeoutS, force)
    // Stopped on purpose: an interrupted upgrade no longer owes it a start.
    if (!ctx.dryRun && (await vmVolumes(host, m.name)).owedStart) await pool.deleteVolume(host.uri, upgradeRunningMarker(m.name))
    return { before, after: ctx.dryRun ? 'shut off' : ((await libvirt.domainState(m.name, host.uri)) ?? 'unknown'), forced }
  })
}

/** Power off, undefine (with NVRAM), delete the boot overlays; the /var volume (and console log) only with deleteData. */
export async function destroyRemote(ctx: FleetContext, m: Machine, deleteData: boolean, timeoutS: number): Promise<{ removed: string[]; kept: string[] }> {
  const host = remoteHost(m)!
  return withRemoteLock(host.ssh, m.name, async () => {
    const state = await libvirt.domainState(m.name, host.uri)
    if (state) await assertRemoteOwned(ctx, m)
    const vols = await vmVolumes(host, m.name)
    const deletes = [...vols.boots, ...(vols.owedStart ? [upgradeRunningMarker(m.name)] : []), ...(deleteData && vols.var ? [vols.var] : []), ...(deleteData && vols.varComplete ? [varMarker(m.name)] : [])]
    if (!state && !vols.boots.length && !vols.var) throw new UserError(`machine ${m.name}: nothing to destroy on ${host.uri} (no domain, no volumes)`)
    const removed = [...(state ? [`domain ${m.name} on ${host.uri}`] : []), ...deletes.map((v) => `volume ${v} on ${host.ssh.host}`)]
    const kept = !deleteData && vols.var ? [`volume ${vols.var} on ${host.ssh.host}`] : []
    if (ctx.dryRun) return { removed, kept }
    if (state) {
      await stopRemote(ctx, m, host, timeoutS, true)
      await libvirt.undefineWithNvram(m.name, host.uri)
    }
    for (const v of deletes) await pool.deleteVolume(host.uri, v)
    if (deleteData) {
      await forgetRemoteIdentity(ctx.paths, m.name)
      await pool.refreshPool(host.uri)
      await pool.deleteVolume(host.uri, consoleLogName(m.name))
    }
    return { removed, kept }
  })
}

/**
 * Upgrade on the host: the new base shipped, a boot overlay volume on it, the VM stopped, its
 * /var identity resynced, the domain redefined on the new overlay (the switch: one define), and
 * started again if it ran. Overlays beyond the current one and `keep - 1` before it are deleted.
 * Every step can run again: a killed upgrade converges on the next one.
 */
export async function upgradeRemote(ctx: FleetContext, m: Machine, identity: Map<string, Buffer>, image: StoredImage, o: { timeoutS: number; force: boolean; keep: number }): Promise<{ from: string; wasRunning: boolean }> {
  const host = remoteHost(m)!
  return withRemoteLock(host.ssh, m.name, async () => {
    const live = await libvirt.domainXml(m.name, true, host.uri)
    if (!live) throw new UserError(`machine ${m.name}: no libvirt domain of that name is defined on ${host.uri}`, `Create it with \`fleet create-vm ${m.name}\`.`)
    await assertRemoteOwned(ctx, m)
    const before = parseDomain(live)
    const from = before.base?.digest ?? 'unknown'
    const boot = await bootVolumeOn(host, m.name, image, ctx.log)
    const varVol = await pool.volume(host.uri, varVolume(m.name))
    if (!varVol) throw new UserError(`machine ${m.name}: its /var volume ${varVolume(m.name)} is missing on ${host.uri}`)
    // Running now, or stopped by an earlier upgrade of it that was killed before it started it again.
    const owed = (await vmVolumes(host, m.name)).owedStart
    const wasRunning = owed || (await libvirt.isActive(m.name, host.uri))
    if (wasRunning && !owed) await pool.createVolume(host.uri, upgradeRunningMarker(m.name), 1, 'raw')
    step('remote-upgrade:marked')
    await stopRemote(ctx, m, host, o.timeoutS, o.force)
    step('remote-upgrade:stopped')
    ctx.log(`Resyncing the identity on ${varVol.name} (e2fsprogs on ${host.ssh.host})`)
    await resyncRemoteVar(host.ssh, varVol.path, identity)
    await recordRemoteIdentity(ctx.paths, m.name, identity)
    const xml = await remoteXmlOn(ctx, m, image.digest, boot, varVol.path)
    await libvirt.defineXml(xml, host.uri)
    await writeXml(ctx.paths, m.name, xml)
    if (wasRunning) {
      await libvirt.ensureRunning(m.name, host.uri)
      await pool.deleteVolume(host.uri, upgradeRunningMarker(m.name))
    }
    // Keep the current overlay, the one it replaced and others up to `keep` rollback points in all.
    const others = (await vmVolumes(host, m.name)).boots.filter((v) => v !== boot.name && isBootOf(m.name, v))
    const previous = others.filter((v) => before.disks.some((d) => d.source.endsWith(`/${v}`)))
    const drop = others.filter((v) => !previous.includes(v)).slice(0, Math.max(0, others.length - (o.keep - 1)))
    for (const v of drop) await pool.deleteVolume(host.uri, v)
    return { from, wasRunning }
  })
}

/** The VM's console log on its host (virtlogd writes it beside the volumes). */
export async function remoteConsoleLog(m: Machine): Promise<string | undefined> {
  const host = remoteHost(m)!
  const v = await pool.volume(host.uri, varVolume(m.name))
  if (!v) return undefined
  const r = await tryRunOn(host.ssh, ['cat', '--', `${dirname(v.path)}/${consoleLogName(m.name)}`])
  return r.exitCode === 0 ? r.stdout : undefined
}

/** The machine if machines/NAME puts it on a remote host; undefined for a local (or unreadable) definition. */
export async function remoteMachine(paths: Paths, name: string): Promise<Machine | undefined> {
  const m = await loadMachine(paths, name).catch(() => undefined)
  return m && remoteHost(m) ? m : undefined
}

/** The undo steps of a remote create-vm (killed or failed): its domain there, its boot overlays, and its /var volume unless it was kept from before. */
export async function remoteCreateUndo(m: Machine, varBefore: boolean): Promise<{ what: string; run: () => Promise<void> }[]> {
  const host = remoteHost(m)!
  const vols = await vmVolumes(host, m.name)
  const varVols = varBefore ? [] : [...(vols.varComplete ? [varMarker(m.name)] : []), ...(vols.var ? [vols.var] : [])]
  const gone = [...varVols, ...vols.boots]
  const steps = gone.map((v) => ({ what: `volume ${v} on ${hostLabel(host)}`, run: () => pool.deleteVolume(host.uri, v) }))
  if (await libvirt.domainState(m.name, host.uri)) {
    steps.push({ what: `domain ${m.name} on ${host.uri}`, run: async () => {
      await libvirt.destroy(m.name, host.uri)
      await libvirt.undefineWithNvram(m.name, host.uri)
    } })
  }
  return steps
}
