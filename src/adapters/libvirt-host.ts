// What the libvirt host already uses and who qemu runs as: MACs and UUIDs of every defined
// domain (so a new machine never shares one with another fleet's VM), and the DAC label
// (uid:gid) libvirt starts qemu with (so fleet can check qemu will reach the disks).
import { libvirtUri, words } from '../util/env.js'
import { parseDomain } from '../xml/serialize.js'
import { tryRun } from './exec.js'
import { listDomains } from './libvirt.js'

export interface HostAddresses {
  /** Lowercase MAC addresses of every interface of every domain, keyed to the domain using it. */
  macs: Map<string, string>
  uuids: Map<string, string>
}

/** MACs and UUIDs of every domain defined on the host (persistent or transient, running or not). */
export async function hostAddresses(uri?: string): Promise<HostAddresses> {
  const out: HostAddresses = { macs: new Map(), uuids: new Map() }
  // The persistent definition and, for a running domain, the live one (it may differ); a domain
  // undefined while the host is read is left out.
  for (const d of await listDomains(uri)) {
    for (const xml of [d.xml, d.liveXml]) {
      if (!xml) continue
      // parseDomain also reads slirp NICs' "mac=" from <qemu:commandline>.
      const p = parseDomain(xml)
      if (p.uuid) out.uuids.set(p.uuid.toLowerCase(), d.name)
      for (const mac of p.macs) if (mac) out.macs.set(mac.toLowerCase(), d.name)
    }
  }
  return out
}

/** One domain's XML (definition, and the live one of a running domain), lowercased for searching. */
export interface HostDomainText {
  name: string
  xmls: string[]
  lower: string[]
}

/** Every domain's XML on the host (`uri`, default this one), unparsed: hostUserOf parses only those that hold the address asked about. */
export async function hostDomainTexts(uri?: string): Promise<HostDomainText[]> {
  return (await listDomains(uri)).map((d) => {
    const xmls = [d.xml, ...(d.liveXml ? [d.liveXml] : [])]
    return { name: d.name, xmls, lower: xmls.map((x) => x.toLowerCase()) }
  })
}

/**
 * A domain other than `self` whose definition or live configuration uses the MAC or UUID, if any.
 * An XML whose text does not contain the value cannot use it; only the others are parsed.
 */
export function hostUserOf(domains: readonly HostDomainText[], kind: 'mac' | 'uuid', value: string, self: string): string | undefined {
  const v = value.toLowerCase()
  for (const d of domains) {
    if (d.name === self) continue
    for (const [i, xml] of d.xmls.entries()) {
      if (!d.lower[i]!.includes(v)) continue
      const p = parseDomain(xml)
      if (kind === 'uuid' ? p.uuid?.toLowerCase() === v : p.macs.some((m) => m?.toLowerCase() === v)) return d.name
    }
  }
  return undefined
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
