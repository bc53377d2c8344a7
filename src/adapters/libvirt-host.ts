// What the libvirt host already uses and who qemu runs as: MACs and UUIDs of every defined
// domain (so a new machine never shares one with another fleet's VM), and the DAC label
// (uid:gid) libvirt starts qemu with (so fleet can check qemu will reach the disks).
import { libvirtUri, words } from '../util/env.js'
import { parseDomain } from '../xml/serialize.js'
import { tryRun } from './exec.js'
import { domainState, domainXml, listDomainNames } from './libvirt.js'

export interface HostAddresses {
  /** Lowercase MAC addresses of every interface of every domain, keyed to the domain using it. */
  macs: Map<string, string>
  uuids: Map<string, string>
}

/** A domain's XML; undefined if it was undefined while the host was being scanned. */
async function xmlOf(name: string, inactive: boolean): Promise<string | undefined> {
  try {
    return await domainXml(name, inactive)
  } catch (e) {
    if ((await domainState(name)) === undefined) return undefined
    throw e
  }
}

/** MACs and UUIDs of every domain defined on the host (persistent or transient, running or not). */
export async function hostAddresses(): Promise<HostAddresses> {
  const out: HostAddresses = { macs: new Map(), uuids: new Map() }
  const names = await listDomainNames()
  // Both the persistent definition and the live one (a running domain may differ from it), all at once.
  const xmls = await Promise.all(names.map(async (name) => ({ name, both: await Promise.all([xmlOf(name, true), xmlOf(name, false)]) })))
  for (const { name, both } of xmls) {
    for (const xml of both) {
      if (!xml) continue // undefined meanwhile
      // parseDomain also reads slirp NICs' "mac=" from <qemu:commandline>.
      const d = parseDomain(xml)
      if (d.uuid) out.uuids.set(d.uuid.toLowerCase(), name)
      for (const mac of d.macs) if (mac) out.macs.set(mac.toLowerCase(), name)
    }
  }
  return out
}

export interface DacLabel {
  uid: number
  gid: number
}

const virsh = (): string[] => [...words(process.env.VIRSH || 'virsh'), '-c', libvirtUri()]

let capabilities: Promise<Awaited<ReturnType<typeof tryRun>> | undefined> | undefined

/**
 * The uid:gid libvirt's DAC driver runs qemu as (`virsh capabilities`, secmodel dac, baselabel
 * for `virtType`); undefined when the host has no DAC security model or virsh cannot say.
 */
export async function qemuDacLabel(virtType: 'kvm' | 'qemu' = 'qemu'): Promise<DacLabel | undefined> {
  // Asked once per process: a batch (create-vm of several names, apply) makes many VM folders.
  const r = await (capabilities ??= tryRun(virsh(), ['capabilities']).catch(() => undefined))
  if (!r || r.exitCode !== 0) return undefined
  for (const m of r.stdout.matchAll(/<secmodel>([\s\S]*?)<\/secmodel>/g)) {
    if (!/<model>dac<\/model>/.test(m[1]!)) continue
    const labels = [...m[1]!.matchAll(/<baselabel type='(\w+)'>\+?(\d+):\+?(\d+)<\/baselabel>/g)]
    const l = labels.find((x) => x[1] === virtType) ?? labels[0]
    if (l) return { uid: Number(l[2]), gid: Number(l[3]) }
  }
  return undefined
}
