// A domain's XML as libvirt gives it back, parsed into the typed model fleet generates
// (xml/domain.ts), so plan compares models rather than text. libvirt normalises what it stores
// (machine type aliases expanded, default CPU, addresses and controllers added); only what the
// model holds is read, and libvirt's spellings are mapped back to fleet's.
import { XMLParser } from 'fast-xml-parser'
import type { Cpu, Disk, Domain, Interface, LifecycleAction, PortForward } from './domain.js'
import { fleetElement } from './serialize.js'

type Node = Record<string, unknown>

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name) => ['disk', 'interface', 'portForward', 'range', 'qemu:arg', 'channel', 'serial', 'rng'].includes(name),
})

const get = (n: unknown, k: string): Node | undefined => (n && typeof n === 'object' ? ((n as Node)[k] as Node | undefined) : undefined)
const attr = (n: unknown, k: string): string | undefined => {
  const v = get(n, `@_${k}`)
  return v === undefined ? undefined : String(v)
}
const text = (n: unknown): string | undefined => (typeof n === 'string' ? n : n && typeof n === 'object' ? (get(n, '#text') as unknown as string | undefined) : undefined)
const list = (n: unknown): Node[] => (Array.isArray(n) ? (n as Node[]) : n ? [n as Node] : [])

const UNIT_KIB: Record<string, number> = { b: 1 / 1024, bytes: 1 / 1024, k: 1, kib: 1, kb: 1000 / 1024, m: 1024, mib: 1024, mb: 1e6 / 1024, g: 1024 ** 2, gib: 1024 ** 2, gb: 1e9 / 1024 }

function kib(n: unknown): number {
  const unit = (attr(n, 'unit') ?? 'KiB').toLowerCase()
  return Math.round(Number(text(n)) * (UNIT_KIB[unit] ?? 1))
}

/** libvirt expands machine type aliases (q35 → pc-q35-7.2, virt → virt-7.2): back to the family fleet writes. */
export function machineFamily(machine: string): string {
  return machine.replace(/^pc-/, '').replace(/-\d+(\.\d+)*$/, '')
}

/** slirp NICs fleet passes as <qemu:commandline> (-netdev user,…,hostfwd=… / -device virtio-net-pci,netdev=…,mac=…). */
function slirpInterfaces(args: string[]): Interface[] {
  const netdevs = new Map<string, PortForward[]>()
  const out: Interface[] = []
  for (let i = 0; i < args.length - 1; i++) {
    const v = args[i + 1]!
    if (args[i] === '-netdev' && v.startsWith('user,')) {
      const opts = v.split(',').slice(1)
      const id = opts.find((o) => o.startsWith('id='))?.slice(3) ?? ''
      const fwds = opts.filter((o) => o.startsWith('hostfwd=')).map((o) => {
        const m = /^hostfwd=(tcp|udp):([^:]*):(\d+)-[^:]*:(\d+)$/.exec(o)
        return m ? { proto: m[1] as 'tcp' | 'udp', address: m[2]!, hostPort: Number(m[3]), guestPort: Number(m[4]) } : undefined
      })
      netdevs.set(id, fwds.filter((f): f is PortForward => Boolean(f)))
    }
    if (args[i] === '-device' && v.startsWith('virtio-net-pci,')) {
      const opts = Object.fromEntries(v.split(',').slice(1).map((o) => [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)]))
      out.push({ type: 'user', mac: opts.mac ?? '', backend: 'slirp', portForwards: netdevs.get(opts.netdev ?? '') ?? [] })
    }
  }
  return out
}

function iface(i: Node): Interface {
  const mac = attr(get(i, 'mac'), 'address') ?? ''
  if (attr(i, 'type') === 'network') return { type: 'network', network: attr(get(i, 'source'), 'network') ?? '', mac }
  return {
    type: 'user',
    mac,
    backend: (attr(get(i, 'backend'), 'type') ?? 'slirp') as 'passt' | 'slirp',
    portForwards: list(get(i, 'portForward')).flatMap((p) => list(get(p, 'range')).map((r) => ({
      proto: (attr(p, 'proto') ?? 'tcp') as 'tcp' | 'udp',
      address: attr(p, 'address') ?? '',
      hostPort: Number(attr(r, 'start')),
      guestPort: Number(attr(r, 'to')),
    }))),
  }
}

/** The model of a domain's XML; fields fleet never sets are not read. */
export function parseDomainModel(xml: string): Domain {
  return readDomain(xml).model
}

/**
 * The model and who the domain says owns it (fleet's metadata element: its machine name and, from
 * fleets with ids, the fleet id; undefined when it has none), from one parse: plan reads every
 * domain on the host, and parsing is most of its time.
 */
export function readDomain(xml: string): { model: Domain; owner?: { machine: string; fleetId?: string } } {
  const dom = (parser.parse(xml) as { domain?: Node }).domain
  if (!dom) throw new Error('not a <domain> document')
  const model = modelOf(dom)
  const meta = fleetElement(get(dom, 'metadata'))
  if (!meta) return { model }
  const fleetId = attr(meta, 'fleet-id')
  return { model, owner: { machine: attr(meta, 'name') ?? '', ...(fleetId ? { fleetId } : {}) } }
}

function modelOf(dom: Node): Domain {
  const os = get(dom, 'os')
  const type = get(os, 'type')
  const loader = get(os, 'loader')
  const nvram = get(os, 'nvram')
  const meta = fleetElement(get(dom, 'metadata'))
  const base = meta && (Object.entries(meta).find(([k]) => k === 'base' || k.endsWith(':base'))?.[1] as Node | undefined)
  const cpuNode = get(dom, 'cpu')
  const cpu: Cpu | undefined = cpuNode ? { mode: attr(cpuNode, 'mode') as Cpu['mode'], ...(text(get(cpuNode, 'model')) ? { model: text(get(cpuNode, 'model')) } : {}) } : undefined
  const devices = get(dom, 'devices')
  const disks: Disk[] = list(get(devices, 'disk')).filter((d) => (attr(d, 'device') ?? 'disk') === 'disk').map((d) => ({
    source: attr(get(d, 'source'), 'file') ?? '',
    target: attr(get(d, 'target'), 'dev') as Disk['target'],
    readonly: 'readonly' in d,
    driverType: attr(get(d, 'driver'), 'type') as Disk['driverType'],
  }))
  const qemuArgs = list(get(get(dom, 'qemu:commandline'), 'qemu:arg')).map((a) => attr(a, 'value') ?? '')
  const arch = (attr(type, 'arch') ?? '') as Domain['os']['arch']
  return {
    type: attr(dom, 'type') as Domain['type'],
    name: text(dom.name) ?? '',
    uuid: text(dom.uuid) ?? '',
    metadata: {
      fleetId: attr(meta, 'fleet-id') ?? '',
      machine: attr(meta, 'name') ?? '',
      base: { channel: attr(base, 'channel') ?? '', digest: attr(base, 'digest') ?? '' },
    },
    memoryKiB: kib(get(dom, 'memory')),
    vcpu: Number(text(get(dom, 'vcpu'))),
    os: {
      arch,
      machine: machineFamily(attr(type, 'machine') ?? '') as Domain['os']['machine'],
      loader: { path: text(loader) ?? '', readonly: (attr(loader, 'readonly') === 'yes') as true, type: (attr(loader, 'type') ?? '') as 'pflash', secure: attr(loader, 'secure') === 'yes' },
      nvram: { path: text(nvram) ?? '', template: attr(nvram, 'template') ?? '' },
      boot: (attr(get(os, 'boot'), 'dev') ?? '') as 'hd',
    },
    features: { acpi: Boolean(get(dom, 'features') && 'acpi' in get(dom, 'features')!), apic: Boolean(get(dom, 'features') && 'apic' in get(dom, 'features')!) },
    ...(cpu ? { cpu } : {}),
    clock: { offset: attr(get(dom, 'clock'), 'offset') as 'utc' },
    onPoweroff: text(get(dom, 'on_poweroff')) as LifecycleAction,
    onReboot: text(get(dom, 'on_reboot')) as LifecycleAction,
    onCrash: text(get(dom, 'on_crash')) as LifecycleAction,
    devices: {
      disks,
      interfaces: [...list(get(devices, 'interface')).map(iface), ...slirpInterfaces(qemuArgs)],
      serial: { log: attr(get(list(get(devices, 'serial'))[0], 'log'), 'file') ?? '' },
      guestAgent: list(get(devices, 'channel')).some((c) => attr(get(c, 'target'), 'name') === 'org.qemu.guest_agent.0'),
      rng: list(get(devices, 'rng')).length > 0,
    },
  }
}
