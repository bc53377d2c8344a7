// A remote upgrade that did not finish: killed (its local intent record is found by the next
// command on the VM, or `fleet repair`) or failed part way. Every host-side step of upgradeRemote
// can run again and /var/identity on the host is always complete (old or new), so:
//   - the VM runs there: the upgrade never stopped it, or had started it again: nothing to finish
//     (the "start owed" marker, if any, is dropped);
//   - it is off: a killed run is taken the rest of the way to the recorded base (resync, define,
//     start again if it ran); a failed run (or a base no longer in the store) leaves the
//     definition it has and only starts the VM again if the upgrade had stopped it.
import { existsSync } from 'node:fs'
import * as libvirt from '../adapters/libvirt.js'
import * as pool from '../adapters/storage-pool.js'
import type { Machine } from '../machines/model.js'
import { loadMachine, readIdentity } from '../machines/repository.js'
import type { VmName } from '../name.js'
import type { IntentHandle } from '../ops/intent.js'
import { withStore } from '../ops/vm-op.js'
import { imagePath, listImages } from '../store/images.js'
import type { FleetContext } from './context.js'
import { upgradeRunningMarker, vmVolumes } from './remote-disks.js'
import { remoteHost, upgradeRemote } from './remote-vm.js'

/** The intent record of an upgrade of a VM on a remote host. */
export interface RemoteUpgradeData {
  remote: true
  from: string
  to: string
  wasRunning: boolean
  keep: number
}

export const isRemoteUpgrade = (d: unknown): d is RemoteUpgradeData => (d as { remote?: unknown } | undefined)?.remote === true

/** Finishes the upgrade (rollForward) or restores a consistent, running-if-it-ran VM; says which. */
export async function finishOrRestore(ctx: FleetContext, m: Machine, d: RemoteUpgradeData, o: { rollForward: boolean }): Promise<string> {
  const host = remoteHost(m)!
  const owed = (await vmVolumes(host, m.name)).owedStart
  if (await libvirt.isActive(m.name, host.uri)) {
    if (owed) await pool.deleteVolume(host.uri, upgradeRunningMarker(m.name))
    return `running on ${host.ssh.host}, nothing to finish`
  }
  const image = o.rollForward && existsSync(imagePath(ctx.paths, d.to)) ? (await listImages(ctx.paths)).find((i) => i.digest === d.to) : undefined
  if (image) {
    const identity = await readIdentity(m, ctx.keyring)
    const r = await withStore(ctx, 'shared', () => upgradeRemote(ctx, m, identity, image, { timeoutS: 60, force: true, keep: d.keep }))
    return `finished on ${host.ssh.host}: on ${d.to.slice(0, 12)}${r.wasRunning ? ', started again' : ', stopped as it was'}`
  }
  if (!owed) return `stopped on ${host.ssh.host}, left on its current definition`
  await libvirt.ensureRunning(m.name, host.uri)
  await pool.deleteVolume(host.uri, upgradeRunningMarker(m.name))
  return `started again on ${host.ssh.host} on its current definition${o.rollForward ? ` (base ${d.to.slice(0, 12)} is no longer in the store: run \`fleet upgrade ${m.name}\`)` : ''}`
}

/** Resolves a killed remote upgrade (the caller holds the VM's local lock). */
export async function recoverRemoteUpgrade(ctx: FleetContext, name: VmName, intent: IntentHandle<RemoteUpgradeData>): Promise<string[]> {
  const m = await loadMachine(ctx.paths, name).catch(() => undefined)
  if (!m || !remoteHost(m)) {
    await intent.done()
    return [`removed the record of an interrupted remote upgrade: machines/${name} no longer puts it on a remote host`]
  }
  const what = await finishOrRestore(ctx, m, intent.data, { rollForward: true })
  await intent.done()
  return [`the interrupted upgrade: ${what}`]
}
