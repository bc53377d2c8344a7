// fleet rollback of a VM on a remote host: its rollback points are the other boot overlay volumes
// of the VM in the host's pool (each named for its base); rolling back redefines the domain on one
// of them (one define: nothing to resume after a kill) and restarts the VM if it ran. /var stays.
import * as libvirt from '../adapters/libvirt.js'
import * as pool from '../adapters/storage-pool.js'
import { UserError } from '../errors.js'
import { withRemoteLock } from '../hosts/remote-lock.js'
import type { Machine } from '../machines/model.js'
import { channelKey, readChannels } from '../store/images.js'
import { parseDomain } from '../xml/serialize.js'
import type { FleetContext } from './context.js'
import { writeXml } from './domain-xml.js'
import { upgradeRunningMarker, varVolume, vmVolumes } from './remote-disks.js'
import { assertRemoteOwned, remoteHost, remoteXmlOn, stopRemote } from './remote-vm.js'

const digestOf = (backing: string | undefined) => (backing && /base-([0-9a-f]{64})\.qcow2$/.exec(backing)?.[1]) || undefined

/** `start`: start it afterwards even if it was not running (a rolling upgrade's VM that failed its check and went down). */
export async function rollbackRemote(ctx: FleetContext, m: Machine, to?: string, o: { start?: boolean } = {}): Promise<{ baseFrom: string; baseTo: string }> {
  const host = remoteHost(m)!
  return withRemoteLock(host.ssh, m.name, async () => {
    const xml = await libvirt.domainXml(m.name, true, host.uri)
    if (!xml) throw new UserError(`machine ${m.name}: no libvirt domain of that name is defined on ${host.uri}`)
    await assertRemoteOwned(ctx, m)
    const current = parseDomain(xml)
    const from = current.base?.digest ?? 'unknown'
    const points = new Map<string, pool.Volume>()
    for (const name of (await vmVolumes(host, m.name)).boots) {
      const v = await pool.volume(host.uri, name)
      const d = digestOf(v?.backing)
      if (v && d && d !== from && !current.disks.some((x) => x.source === v.path)) points.set(d, v)
    }
    if (!points.size) throw new UserError(`machine ${m.name}: no previous boot overlay to roll back to on ${host.uri}`, 'Rollback works after an upgrade that changed the base image.')
    // Without --to: the newest image the channel was on before that this VM kept a point of.
    const previous = (await readChannels(ctx.paths))[channelKey(m.base, m.arch)]?.previous ?? []
    const target = to !== undefined ? [...points.keys()].find((d) => d.startsWith(to.toLowerCase())) : (previous.find((d) => points.has(d)) ?? [...points.keys()][0])
    if (!target) throw new UserError(`machine ${m.name}: --to ${to} is not a rollback point of this VM (it keeps ${[...points.keys()].map((d) => d.slice(0, 12)).join(', ')})`, `Roll back to one of those: fleet rollback ${m.name} --to DIGEST`)
    if (ctx.dryRun) return { baseFrom: from, baseTo: target }
    const varVol = await pool.volume(host.uri, varVolume(m.name))
    if (!varVol) throw new UserError(`machine ${m.name}: its /var volume ${varVolume(m.name)} is missing on ${host.uri}`)
    // As in an upgrade: a start owed by an interrupted one, or one this rollback owes, is recorded on the host first.
    const owed = (await vmVolumes(host, m.name)).owedStart
    const startAfter = owed || Boolean(o.start) || (await libvirt.isActive(m.name, host.uri))
    if (startAfter && !owed) await pool.createVolume(host.uri, upgradeRunningMarker(m.name), 1, 'raw')
    await stopRemote(ctx, m, host, 300, true)
    const domain = await remoteXmlOn(ctx, m, target, points.get(target)!, varVol.path)
    await libvirt.defineXml(domain, host.uri)
    await writeXml(ctx.paths, m.name, domain)
    if (startAfter) {
      await libvirt.ensureRunning(m.name, host.uri)
      await pool.deleteVolume(host.uri, upgradeRunningMarker(m.name))
    }
    return { baseFrom: from, baseTo: target }
  })
}
