// Generating a machine's domain XML and libvirt/<name>.xml.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { findFirmware } from '../firmware.js'
import type { Machine } from '../machines/model.js'
import { vmFiles, type Paths } from '../repo.js'
import { fleetId, readFleetId } from '../store/fleet-id.js'
import { channelKey, overlayBaseDigest, readChannels } from '../store/images.js'
import { writeFileAtomic } from '../util/fsx.js'
import { buildDomain } from '../xml/build-domain.js'
import type { Domain, LifecycleAction, UserNetBackend, VirtType } from '../xml/domain.js'
import { resolveUserNet } from '../user-net.js'
import type { FleetContext } from './context.js'
import { serializeDomain } from '../xml/serialize.js'

export function xmlPath(paths: Paths, name: string): string {
  return join(paths.libvirt, `${name}.xml`)
}

/** The base digest a VM is on: from its overlay's real backing file, else its channel. */
export async function currentBaseDigest(paths: Paths, m: Machine): Promise<string> {
  const files = vmFiles(paths, m.name)
  const d = existsSync(files.boot) ? await overlayBaseDigest(paths, files.boot) : undefined
  if (d) return d
  return (await readChannels(paths))[channelKey(m.base, m.arch)]?.digest ?? 'none'
}

export interface XmlSettings {
  virtType: VirtType
  onReboot: LifecycleAction
  userNet: UserNetBackend
  baseDigest: string
  fleetId: string
}

export function renderXml(paths: Paths, m: Machine, s: XmlSettings): string {
  return serializeDomain(renderDomain(paths, m, s))
}

export function renderDomain(paths: Paths, m: Machine, s: XmlSettings): Domain {
  return buildDomain(m, {
    virtType: s.virtType,
    onReboot: s.onReboot,
    userNet: s.userNet,
    firmware: findFirmware(m.arch),
    files: vmFiles(paths, m.name),
    baseDigest: s.baseDigest,
    fleetId: s.fleetId,
  })
}

/** Stands in for the fleet id in a dry run on a state directory that has none yet (a dry run writes nothing). */
export const FLEET_ID_PENDING = 'made-on-first-define'

/**
 * The XML of machine `m` on `baseDigest` with this host's settings (KVM or not, user networking),
 * carrying this state directory's fleet id (made on first use, except in a dry run).
 */
export async function machineXml(ctx: FleetContext, m: Machine, baseDigest: string): Promise<string> {
  return serializeDomain(await machineDomain(ctx, m, baseDigest))
}

/** The domain model machineXml serialises (plan compares it with what libvirt holds). */
export async function machineDomain(ctx: FleetContext, m: Machine, baseDigest: string): Promise<Domain> {
  const virtType = await ctx.virtType()
  const userNet = m.network === 'user' ? await resolveUserNet(virtType, m.arch) : 'slirp'
  const id = ctx.dryRun ? ((await readFleetId(ctx.paths)) ?? FLEET_ID_PENDING) : await fleetId(ctx.paths)
  return renderDomain(ctx.paths, m, { virtType, onReboot: ctx.onReboot, userNet, baseDigest, fleetId: id })
}

export interface XmlWrite {
  name: string
  file: string
  changed: boolean
}

/** Writes libvirt/<name>.xml when its content changes. */
export async function writeXml(paths: Paths, name: string, xml: string, dryRun = false): Promise<XmlWrite> {
  const file = xmlPath(paths, name)
  const old = existsSync(file) ? await readFile(file, 'utf8') : undefined
  const changed = old !== xml
  if (changed && !dryRun) await writeFileAtomic(file, xml)
  return { name, file, changed }
}
