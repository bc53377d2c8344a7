// Generating a machine's domain XML and libvirt/<name>.xml.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { findFirmware } from '../firmware.js'
import type { Machine } from '../machines/model.js'
import { vmFiles, type Paths } from '../repo.js'
import { channelKey, overlayBaseDigest, readChannels } from '../store/images.js'
import { writeFileAtomic } from '../util/fsx.js'
import { buildDomain } from '../xml/build-domain.js'
import type { LifecycleAction, UserNetBackend, VirtType } from '../xml/domain.js'
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
}

export function renderXml(paths: Paths, m: Machine, s: XmlSettings): string {
  return serializeDomain(buildDomain(m, {
    virtType: s.virtType,
    onReboot: s.onReboot,
    userNet: s.userNet,
    firmware: findFirmware(m.arch),
    files: vmFiles(paths, m.name),
    baseDigest: s.baseDigest,
  }))
}

/** The XML of machine `m` on `baseDigest` with this host's settings (KVM or not, user networking). */
export async function machineXml(ctx: FleetContext, m: Machine, baseDigest: string): Promise<string> {
  const virtType = await ctx.virtType()
  const userNet = m.network === 'user' ? await resolveUserNet(virtType, m.arch) : 'slirp'
  return renderXml(ctx.paths, m, { virtType, onReboot: ctx.onReboot, userNet, baseDigest })
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
