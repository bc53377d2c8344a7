// All libvirt access: the @unraid/libvirt binding for connection, define, start, shutdown,
// destroy, state and list; virsh for what the binding lacks (undefine --nvram, console).
// Services never see a raw connection.
import { ToolError } from '../errors.js'
import { libvirtUri, words } from '../util/env.js'
import { parseDomain } from '../xml/serialize.js'
import { run, runInteractive, tryRun } from './exec.js'

export type DomainStateName = 'running' | 'blocked' | 'paused' | 'shutdown' | 'shut off' | 'crashed' | 'pmsuspended' | 'no state'
const STATE_NAMES: DomainStateName[] = ['no state', 'running', 'blocked', 'paused', 'shutdown', 'shut off', 'crashed', 'pmsuspended']

type Binding = typeof import('@unraid/libvirt')
type Hypervisor = InstanceType<Binding['Hypervisor']>
type Domain = Awaited<ReturnType<Hypervisor['domainLookupByName']>>

const VIR_ERR_NO_DOMAIN = 42
const VIR_ERR_OPERATION_INVALID = 55
const VIR_DOMAIN_XML_INACTIVE = 2

// The binding does not always carry libvirt's error code; fall back to its message text.
function isNoDomain(e: unknown): boolean {
  const err = e as { code?: number; message?: string }
  return err.code === VIR_ERR_NO_DOMAIN || /Domain not found|no domain with matching/i.test(err.message ?? '')
}

function isNotRunning(e: unknown): boolean {
  const err = e as { code?: number; message?: string }
  return err.code === VIR_ERR_OPERATION_INVALID || /domain is not running|Requested operation is not valid/i.test(err.message ?? '')
}

let binding: Promise<Binding> | undefined
// One connection per URI: the local host's, and one per remote host a command touches.
const connections = new Map<string, Promise<Hypervisor>>()

function libvirtError(op: string, e: unknown, uri = libvirtUri()): ToolError {
  const err = e as { message?: string; code?: number }
  return new ToolError('libvirt', [op, uri], err.code, err.message ?? String(e),
    'Is libvirtd running and may you use it? Run `fleet doctor`.')
}

async function connect(uri = libvirtUri()): Promise<Hypervisor> {
  let c = connections.get(uri)
  if (!c) {
    c = (async () => {
      binding ??= import('@unraid/libvirt')
      const { Hypervisor } = await binding
      const h = new Hypervisor({ uri })
      try {
        await h.connectOpen()
      } catch (e) {
        connections.delete(uri)
        throw libvirtError('connect', e, uri)
      }
      return h
    })()
    connections.set(uri, c)
  }
  return c
}

/** Closes the connections so the process can exit. */
export async function disconnect(): Promise<void> {
  const all = [...connections.values()]
  connections.clear()
  for (const c of all) {
    try {
      await (await c).connectClose()
    } catch {
      // Already closed or never opened: nothing to release.
    }
  }
}

async function lookup(name: string, uri?: string): Promise<Domain | undefined> {
  const h = await connect(uri)
  try {
    return await h.domainLookupByName(name)
  } catch (e) {
    if (isNoDomain(e)) return undefined
    throw libvirtError(`lookup ${name}`, e, uri)
  }
}

async function call<T>(op: string, f: () => Promise<T>, uri?: string): Promise<T> {
  try {
    return await f()
  } catch (e) {
    throw libvirtError(op, e, uri)
  }
}

/** The domain's state, or undefined if no domain of that name is defined. */
export async function domainState(name: string, uri?: string): Promise<DomainStateName | undefined> {
  const d = await lookup(name, uri)
  if (!d) return undefined
  const info = await call(`state ${name}`, () => d.getInfo(), uri)
  return STATE_NAMES[info.state] ?? 'no state'
}

export async function isActive(name: string, uri?: string): Promise<boolean> {
  const s = await domainState(name, uri)
  return s !== undefined && s !== 'shut off' && s !== 'crashed'
}

export async function defineXml(xml: string, uri?: string): Promise<void> {
  const h = await connect(uri)
  await call('define', () => h.domainDefineXML(xml), uri)
}

/** The live (or inactive) XML of a defined domain, or undefined. */
export async function domainXml(name: string, inactive = false, uri?: string): Promise<string | undefined> {
  const d = await lookup(name, uri)
  if (!d) return undefined
  return call(`dumpxml ${name}`, () => d.getXMLDesc(inactive ? VIR_DOMAIN_XML_INACTIVE : 0), uri)
}

/**
 * Who a defined domain says it belongs to, from fleet's metadata in its persistent XML (what the
 * next define replaces): `fleet` with the fleet id, `legacy` when an older fleet defined it (fleet
 * metadata without an id), `none` when it has no fleet metadata (defined by another tool).
 */
export type DomainOwner = (
  | { kind: 'fleet'; fleetId: string; machine: string }
  | { kind: 'legacy'; machine: string }
  | { kind: 'none' }
) & { /** Source files of its disks: they show which state directory it uses. */ disks: string[] }

/** The owner recorded in a defined domain's XML, or undefined if no domain of that name is defined. */
export async function domainOwner(name: string, uri?: string): Promise<DomainOwner | undefined> {
  const d = await lookup(name, uri)
  if (!d) return undefined
  let xml: string
  try {
    xml = await d.getXMLDesc(VIR_DOMAIN_XML_INACTIVE)
  } catch (e) {
    if (isNoDomain(e)) return undefined // undefined between lookup and dumpxml
    throw libvirtError(`dumpxml ${name}`, e)
  }
  const parsed = parseDomain(xml)
  const disks = parsed.disks.map((x) => x.source).filter(Boolean)
  const fleet = parsed.fleet
  if (!fleet) return { kind: 'none', disks }
  return fleet.fleetId ? { kind: 'fleet', fleetId: fleet.fleetId, machine: fleet.machine, disks } : { kind: 'legacy', machine: fleet.machine, disks }
}

export async function start(name: string, uri?: string): Promise<void> {
  const d = await lookup(name, uri)
  if (!d) throw new ToolError('libvirt', ['start', name], undefined, `domain ${name} is not defined`)
  await call(`start ${name}`, () => d.create(), uri)
}

/**
 * Starts the domain unless it runs. A start still in flight from a killed fleet process makes
 * libvirt answer "already running" once it completes: that is success here.
 */
export async function ensureRunning(name: string, uri?: string): Promise<void> {
  if (await isActive(name, uri)) return
  try {
    await start(name, uri)
  } catch (e) {
    if ((await isActive(name, uri)) && /already running/i.test((e as Error).message)) return
    throw e
  }
}

/** ACPI shutdown request; returns immediately. */
export async function shutdown(name: string, uri?: string): Promise<void> {
  const d = await lookup(name, uri)
  if (!d) return
  try {
    await d.shutdown()
  } catch (e) {
    if (isNotRunning(e)) return // already off
    throw libvirtError(`shutdown ${name}`, e, uri)
  }
}

/** Hard power-off; a domain that is not running is fine. */
export async function destroy(name: string, uri?: string): Promise<void> {
  const d = await lookup(name, uri)
  if (!d) return
  try {
    await d.destroy()
  } catch (e) {
    if (isNotRunning(e)) return
    throw libvirtError(`destroy ${name}`, e, uri)
  }
}

export async function listDomainNames(): Promise<string[]> {
  const h = await connect()
  const domains = await call('list', () => h.connectListAllDomains())
  return Promise.all(domains.map((d) => call('name', () => d.getName())))
}

export interface DomainSnapshot {
  name: string
  state: DomainStateName
  /** The persistent definition (what the next boot uses). */
  xml: string
  /** The running configuration, for an active domain. */
  liveXml?: string
}

/**
 * Every domain with its state and XML, over the one connection (no process per domain). A domain
 * undefined while the host is read is left out.
 */
export async function listDomains(uri?: string): Promise<DomainSnapshot[]> {
  const h = await connect(uri)
  const domains = await call('list', () => h.connectListAllDomains(), uri)
  const read = await Promise.all(domains.map(async (d): Promise<DomainSnapshot | undefined> => {
    try {
      const [name, info, xml] = await Promise.all([d.getName(), d.getInfo(), d.getXMLDesc(VIR_DOMAIN_XML_INACTIVE)])
      const state = STATE_NAMES[info.state] ?? 'no state'
      const active = state !== 'shut off' && state !== 'crashed'
      return { name, state, xml, ...(active ? { liveXml: await d.getXMLDesc(0) } : {}) }
    } catch (e) {
      if (isNoDomain(e)) return undefined
      throw libvirtError('list', e, uri)
    }
  }))
  return read.filter((x): x is DomainSnapshot => Boolean(x))
}

/** Changes what a running domain does on poweroff/reboot/crash, live and in its definition. */
export async function setLifecycleAction(name: string, type: 'poweroff' | 'reboot' | 'crash', action: string): Promise<void> {
  await run(virsh(), ['set-lifecycle-action', name, type, action, '--live', '--config'], { privileged: true })
}

/** virsh on `uri` (default: the local connection). */
export const virsh = (uri = libvirtUri()): string[] => [...words(process.env.VIRSH || 'virsh'), '-c', uri]

/** Undefines the domain and removes its NVRAM file (the binding has no flags for that). */
export async function undefineWithNvram(name: string, uri?: string): Promise<void> {
  if (!(await lookup(name, uri))) return
  await run(virsh(uri), ['undefine', '--nvram', name], { privileged: true })
}

/** Attaches the terminal to the serial console. */
export async function attachConsole(name: string, uri?: string): Promise<number> {
  return runInteractive(virsh(uri), ['console', name])
}

/** Names of the host's libvirt networks (active or not), or undefined if virsh cannot list them. */
export async function listNetworkNames(): Promise<string[] | undefined> {
  const r = await tryRun(virsh(), ['net-list', '--all', '--name']).catch(() => undefined) // virsh missing
  if (!r || r.exitCode !== 0) return undefined
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort()
}

/**
 * Backends libvirt accepts for <interface type='user'>, from domain capabilities (libvirt
 * reports them since it supports passt); undefined when it does not say.
 */
export async function userNetBackendTypes(virtType: string, arch: string): Promise<string[] | undefined> {
  const r = await tryRun(virsh(), ['domcapabilities', '--virttype', virtType, '--arch', arch]).catch(() => undefined)
  if (!r || r.exitCode !== 0) return undefined
  const m = /<interface[^>]*>[\s\S]*?<enum name=['"]backendType['"]>([\s\S]*?)<\/enum>/.exec(r.stdout)
  return m ? [...m[1]!.matchAll(/<value>([^<]+)<\/value>/g)].map((v) => v[1]!) : undefined
}

/** IPv4 addresses of a running domain: DHCP leases of libvirt networks, else the guest agent. */
export async function domainIPv4(name: string, uri?: string): Promise<string[]> {
  for (const source of ['lease', 'agent']) {
    const r = await tryRun(virsh(uri), ['domifaddr', name, '--source', source]).catch(() => undefined)
    if (!r || r.exitCode !== 0) continue
    const ips = [...r.stdout.matchAll(/\bipv4\s+(\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!).filter((ip) => !ip.startsWith('127.'))
    if (ips.length) return ips
  }
  return []
}

/**
 * One guest-ping through the QEMU guest agent (virsh: the binding has no agent call). False
 * while the guest has not opened its agent channel or does not answer within `timeoutS`.
 */
export async function agentPing(name: string, timeoutS = 5, uri?: string): Promise<boolean> {
  const r = await tryRun(virsh(uri), ['qemu-agent-command', name, '{"execute":"guest-ping"}', '--timeout', String(timeoutS)], { timeoutMs: (timeoutS + 10) * 1000 }).catch(() => undefined)
  return r !== undefined && r.exitCode === 0
}
