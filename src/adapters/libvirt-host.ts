// What the libvirt host already uses and who qemu runs as: MACs and UUIDs of every defined
// domain (so a new machine never shares one with another fleet's VM), and the DAC label
// (uid:gid) libvirt starts qemu with (so fleet can check qemu will reach the disks).
import { XMLParser } from 'fast-xml-parser'
import { libvirtUri, words } from '../util/env.js'
import { tryRun } from './exec.js'
import { domainXml, listDomainNames } from './libvirt.js'

export interface HostAddresses {
  /** Lowercase MAC addresses of every interface of every domain, keyed to the domain using it. */
  macs: Map<string, string>
  uuids: Map<string, string>
}

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', isArray: (name) => name === 'interface' })

interface DomainDoc {
  domain?: { uuid?: string; devices?: { interface?: { mac?: { '@_address'?: string } }[] } }
}

/** MACs and UUIDs of every domain defined on the host (persistent or transient, running or not). */
export async function hostAddresses(): Promise<HostAddresses> {
  const out: HostAddresses = { macs: new Map(), uuids: new Map() }
  for (const name of await listDomainNames()) {
    // Both the persistent definition and the live one (a running domain may differ from it).
    for (const xml of [await domainXml(name, true), await domainXml(name, false)]) {
      if (!xml) continue // undefined meanwhile
      const doc = parser.parse(xml) as DomainDoc
      const uuid = doc.domain?.uuid
      if (typeof uuid === 'string') out.uuids.set(uuid.toLowerCase(), name)
      for (const nic of doc.domain?.devices?.interface ?? []) {
        const mac = nic.mac?.['@_address']
        if (typeof mac === 'string') out.macs.set(mac.toLowerCase(), name)
      }
    }
  }
  return out
}

export interface DacLabel {
  uid: number
  gid: number
}

const virsh = (): string[] => [...words(process.env.VIRSH || 'virsh'), '-c', libvirtUri()]

/**
 * The uid:gid libvirt's DAC driver runs qemu as (`virsh capabilities`, secmodel dac, baselabel
 * for `virtType`); undefined when the host has no DAC security model or virsh cannot say.
 */
export async function qemuDacLabel(virtType: 'kvm' | 'qemu' = 'qemu'): Promise<DacLabel | undefined> {
  const r = await tryRun(virsh(), ['capabilities']).catch(() => undefined)
  if (!r || r.exitCode !== 0) return undefined
  for (const m of r.stdout.matchAll(/<secmodel>([\s\S]*?)<\/secmodel>/g)) {
    if (!/<model>dac<\/model>/.test(m[1]!)) continue
    const labels = [...m[1]!.matchAll(/<baselabel type='(\w+)'>\+?(\d+):\+?(\d+)<\/baselabel>/g)]
    const l = labels.find((x) => x[1] === virtType) ?? labels[0]
    if (l) return { uid: Number(l[2]), gid: Number(l[3]) }
  }
  return undefined
}
