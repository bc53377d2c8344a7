// Domain model <-> XML via fast-xml-parser. Never string templates.
import { createRequire } from 'node:module'

// fast-xml-parser (its bundled CommonJS build) loads on first use: commands that never touch XML
// start faster without it.
type Fxp = typeof import('fast-xml-parser')
let fxp: Fxp | undefined
const lib = (): Fxp => (fxp ??= createRequire(import.meta.url)('fast-xml-parser') as Fxp)
import type { Disk, Domain, Interface } from './domain.js'

export const FLEET_NS = 'https://github.com/fleet-vm/fleet/xmlns/1'
export const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0'

type Node = Record<string, unknown>
const empty = ''

function disk(d: Disk): Node {
  return {
    '@_type': 'file',
    '@_device': 'disk',
    driver: { '@_name': 'qemu', '@_type': d.driverType, '@_discard': 'unmap' },
    source: { '@_file': d.source },
    target: { '@_dev': d.target, '@_bus': 'virtio' },
    ...(d.readonly ? { readonly: empty } : {}),
  }
}

function iface(i: Interface): Node {
  const common = { mac: { '@_address': i.mac }, model: { '@_type': 'virtio' } }
  if (i.type === 'network') return { '@_type': 'network', source: { '@_network': i.network }, ...common }
  return {
    '@_type': 'user',
    ...common,
    backend: { '@_type': i.backend },
    portForward: i.portForwards.map((p) => ({
      '@_proto': p.proto,
      '@_address': p.address,
      range: { '@_start': p.hostPort, '@_to': p.guestPort },
    })),
  }
}

/** QEMU arguments for slirp user networking: a netdev with hostfwd rules and its virtio NIC. */
export function slirpArgs(ifaces: Interface[]): string[] {
  return ifaces.flatMap((i, n) => {
    if (i.type !== 'user' || i.backend !== 'slirp') return []
    const id = `fleetnet${n}`
    const fwd = i.portForwards.map((p) => `,hostfwd=${p.proto}:${p.address}:${p.hostPort}-:${p.guestPort}`).join('')
    // A fixed slot on the root bus: libvirt does not know this device and fills slots from 1 up.
    const addr = `0x${(0x10 + n).toString(16)}`
    return ['-netdev', `user,id=${id}${fwd}`, '-device', `virtio-net-pci,netdev=${id},mac=${i.mac},bus=pcie.0,addr=${addr}`]
  })
}

/** The fast-xml-parser object tree of a domain. */
export function domainTree(d: Domain): Node {
  const libvirtIfaces = d.devices.interfaces.filter((i) => !(i.type === 'user' && i.backend === 'slirp'))
  const qemuArgs = slirpArgs(d.devices.interfaces)
  const devices: Node = {
    disk: d.devices.disks.map(disk),
    ...(libvirtIfaces.length ? { interface: libvirtIfaces.map(iface) } : {}),
    serial: { '@_type': 'pty', log: { '@_file': d.devices.serial.log, '@_append': 'on' }, target: { '@_port': 0 } },
    console: { '@_type': 'pty', target: { '@_type': 'serial', '@_port': 0 } },
    ...(d.devices.guestAgent
      ? { channel: { '@_type': 'unix', target: { '@_type': 'virtio', '@_name': 'org.qemu.guest_agent.0' } } }
      : {}),
    memballoon: { '@_model': 'virtio' },
    ...(d.devices.rng ? { rng: { '@_model': 'virtio', backend: { '@_model': 'random', '#text': '/dev/urandom' } } } : {}),
  }
  return {
    domain: {
      '@_type': d.type,
      ...(qemuArgs.length ? { '@_xmlns:qemu': QEMU_NS } : {}),
      name: d.name,
      uuid: d.uuid,
      metadata: {
        'fleet:machine': {
          '@_xmlns:fleet': FLEET_NS,
          '@_name': d.metadata.machine,
          '@_fleet-id': d.metadata.fleetId,
          'fleet:base': { '@_channel': d.metadata.base.channel, '@_digest': d.metadata.base.digest },
        },
      },
      memory: { '@_unit': 'KiB', '#text': d.memoryKiB },
      vcpu: { '@_placement': 'static', '#text': d.vcpu },
      os: {
        type: { '@_arch': d.os.arch, '@_machine': d.os.machine, '#text': 'hvm' },
        loader: {
          '@_readonly': 'yes',
          '@_type': d.os.loader.type,
          ...(d.os.arch === 'x86_64' ? { '@_secure': d.os.loader.secure ? 'yes' : 'no' } : {}),
          '#text': d.os.loader.path,
        },
        nvram: { '@_template': d.os.nvram.template, ...(d.os.nvram.path ? { '#text': d.os.nvram.path } : {}) },
        boot: { '@_dev': d.os.boot },
      },
      features: { ...(d.features.acpi ? { acpi: empty } : {}), ...(d.features.apic ? { apic: empty } : {}) },
      ...(d.cpu ? { cpu: { '@_mode': d.cpu.mode, ...(d.cpu.model ? { model: d.cpu.model } : {}) } } : {}),
      clock: { '@_offset': d.clock.offset },
      on_poweroff: d.onPoweroff,
      on_reboot: d.onReboot,
      on_crash: d.onCrash,
      devices,
      ...(qemuArgs.length ? { 'qemu:commandline': { 'qemu:arg': qemuArgs.map((v) => ({ '@_value': v })) } } : {}),
    },
  }
}

let builder_: InstanceType<Fxp['XMLBuilder']> | undefined
const builder = () => (builder_ ??= new (lib().XMLBuilder)({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  format: true,
  indentBy: '  ',
  suppressEmptyNode: true,
  suppressBooleanAttributes: false,
}))

export function serializeDomain(d: Domain): string {
  return builder().build(domainTree(d)) as string
}

let parser_: InstanceType<Fxp['XMLParser']> | undefined
const parser = () => (parser_ ??= new (lib().XMLParser)({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name) => ['disk', 'interface', 'portForward', 'qemu:arg'].includes(name),
}))

/** What fleet reads back from a defined domain's XML (libvirt's normalised form). */
export interface DomainSummary {
  name: string
  uuid: string
  type: string
  disks: { target: string; source: string; readonly: boolean }[]
  macs: string[]
  nvram?: string
  consoleLog?: string
  base?: { channel: string; digest: string }
  /** fleet's metadata element, if the domain has one: its machine name and fleet id (absent when an older fleet defined it). */
  fleet?: { machine: string; fleetId?: string }
}

/** fleet's <machine> element under <metadata>, found by namespace URI whatever prefix it was given. */
export function fleetElement(metadata: Node | undefined): Node | undefined {
  if (!metadata || typeof metadata !== 'object') return undefined
  for (const [key, value] of Object.entries(metadata)) {
    const [prefix, local] = key.includes(':') ? key.split(':', 2) : [undefined, key]
    if (local !== 'machine' || !value || typeof value !== 'object') continue
    const el = (Array.isArray(value) ? value[0] : value) as Node
    const ns = prefix ? el[`@_xmlns:${prefix}`] : el['@_xmlns']
    if (ns === FLEET_NS) return el
  }
  return undefined
}

export function parseDomain(xml: string): DomainSummary {
  const dom = (parser().parse(xml) as { domain?: Node }).domain
  if (!dom) throw new Error('not a <domain> document')
  const get = (n: unknown, k: string): Node | undefined => (n && typeof n === 'object' ? ((n as Node)[k] as Node | undefined) : undefined)
  const text = (n: unknown): string | undefined => (typeof n === 'string' ? n : typeof n === 'object' && n ? (get(n, '#text') as unknown as string) : undefined)
  const devices = get(dom, 'devices')
  const disks = ((devices?.disk as Node[] | undefined) ?? []).map((d) => ({
    target: String(get(d, 'target')?.['@_dev'] ?? ''),
    source: String(get(d, 'source')?.['@_file'] ?? ''),
    readonly: 'readonly' in d,
  }))
  const macs = ((devices?.interface as Node[] | undefined) ?? []).map((i) => String(get(i, 'mac')?.['@_address'] ?? ''))
  // slirp NICs live in <qemu:commandline> as "-device virtio-net-pci,…,mac=…".
  for (const a of (get(dom, 'qemu:commandline')?.['qemu:arg'] as Node[] | undefined) ?? []) {
    const m = /(?:^|,)mac=([0-9a-f:]{17})/i.exec(String(a['@_value'] ?? ''))
    if (m) macs.push(m[1]!)
  }
  const meta = fleetElement(get(dom, 'metadata'))
  const base = meta && Object.entries(meta).find(([k]) => k === 'base' || k.endsWith(':base'))?.[1] as Node | undefined
  return {
    name: String(text(dom.name) ?? ''),
    uuid: String(text(dom.uuid) ?? ''),
    type: String(dom['@_type'] ?? ''),
    disks,
    macs,
    nvram: text(get(get(dom, 'os'), 'nvram')),
    consoleLog: get(get(get(devices, 'serial'), 'log'), '@_file') as unknown as string | undefined,
    base: base ? { channel: String(base['@_channel']), digest: String(base['@_digest']) } : undefined,
    fleet: meta ? { machine: String(meta['@_name'] ?? ''), ...(meta['@_fleet-id'] ? { fleetId: String(meta['@_fleet-id']) } : {}) } : undefined,
  }
}
