// The settings of a new machine, described once: each row gives the field's create-vm flag, its
// help text, its prompt, how text becomes a value, its default and its check. create-vm's flags,
// the prompts, the validation and "the same without questions" command line are all read from here.
import { fingerprint } from '../adapters/ssh-keygen.js'
import { ARCHES, DEFAULTS, type Arch } from './model.js'
import * as v from './validate.js'
import { checkHostUri } from '../hosts/host-uri.js'

/** Everything a new machine can be given; flags and prompts both produce this. */
export interface NewMachineSpec {
  memory: string
  /** A number, or the text a flag or prompt gave (checked, then stored as a number). */
  vcpus: number | string
  varSize: string
  base: string
  network: string
  arch: Arch
  dns: string[]
  hosts: string[]
  tcpPorts: string[]
  udpPorts: string[]
  adminKeys: string[]
  userKeys: string[]
  /** The libvirt URI of the host the VM runs on; '' is this host (--connect / LIBVIRT_DEFAULT_URI). */
  host: string
}

export type FieldKey = keyof NewMachineSpec

export type FieldKind =
  | 'text' // one value as typed: 512M
  | 'list' // words separated by commas or spaces: "22, 80"; "none" for none
  | 'lines' // entries that contain spaces, one per flag or comma-separated: "10.0.0.5 db, 10.0.0.6 cache"
  | 'channel' // a base channel from the store
  | 'network' // a libvirt network, user or none
  | 'keys' // SSH public keys: files or key text, found in ~/.ssh, or pasted

/** What the checks need to know about this host. */
export interface HostFacts {
  /** Bytes of RAM (os.totalmem()). */
  totalMemory: number
  /** libvirt network names; undefined when they could not be listed (then any name passes). */
  networks?: readonly string[]
}

export interface Field<K extends FieldKey = FieldKey> {
  key: K
  /** The create-vm flag; `alias` is an older name still accepted (deprecated, hidden). */
  flag: string
  alias?: string
  kind: FieldKind
  /** Flag help; the default is appended from defaultSpec(). */
  description: string
  group: 'HARDWARE' | 'IDENTITY'
  /** The question at a terminal; fields without one are never asked (arch). */
  prompt?: string
  /** How the help shows an empty default (else "none"). */
  emptyDefault?: string
  /** Without a terminal and without --yes, a missing required field is an error naming its flag. */
  required: boolean
  /** The one check of the field: a message refuses the value (and re-asks at a prompt). */
  check(value: NewMachineSpec[K], host: HostFacts): string | undefined | Promise<string | undefined>
}

export function defaultSpec(): NewMachineSpec {
  return {
    memory: DEFAULTS.memory,
    vcpus: DEFAULTS.vcpus,
    varSize: DEFAULTS.varSize,
    base: DEFAULTS.base,
    network: DEFAULTS.network,
    arch: DEFAULTS.arch,
    dns: [...DEFAULTS.dns],
    hosts: [],
    tcpPorts: [...DEFAULTS.tcpPorts],
    udpPorts: [],
    adminKeys: [],
    userKeys: [],
    host: '',
  }
}

export async function checkKeys(kind: string, keys: readonly string[]): Promise<string | undefined> {
  for (const k of keys) {
    if (!(await fingerprint(k))) return `${kind} authorized key "${k.length > 40 ? k.slice(0, 40) + '…' : k}" is not an SSH public key (ssh-keygen -l cannot read it)`
  }
  return undefined
}

const field = <K extends FieldKey>(f: Field<K>): Field<K> => f

export const FIELDS = [
  field({ key: 'memory', flag: 'memory', kind: 'text', group: 'HARDWARE', required: true,
    description: 'Memory, e.g. 512M or 2G; at most what this host has', prompt: 'Memory (e.g. 512M, 2G)',
    check: (m, host) => v.checkMemory(m) ?? v.checkMemoryFits(m, host.totalMemory) }),
  field({ key: 'vcpus', flag: 'vcpus', kind: 'text', group: 'HARDWARE', required: true,
    description: 'Number of virtual CPUs', prompt: 'Virtual CPUs', check: (n) => v.checkVcpus(n) }),
  field({ key: 'varSize', flag: 'var-size', kind: 'text', group: 'HARDWARE', required: true,
    description: 'Size of the /var disk, e.g. 1G', prompt: 'Size of the /var disk (all mutable state; e.g. 1G)', check: (s) => v.checkVarSize(s) }),
  field({ key: 'base', flag: 'channel', alias: 'base', kind: 'channel', group: 'HARDWARE', required: true,
    description: 'Image store channel to boot from; `fleet image list` shows them', prompt: 'Base image channel', check: (c) => v.checkChannel(c) }),
  field({ key: 'network', flag: 'network', kind: 'network', group: 'HARDWARE', required: true,
    description: 'A libvirt network of this host (virsh net-list), "user" (user-mode, SSH forward on 127.0.0.1) or "none"', prompt: 'Network',
    check: (n, host) => v.checkNetwork(n) ?? v.checkNetworkOnHost(n, host.networks) }),
  field({ key: 'arch', flag: 'arch', kind: 'text', group: 'HARDWARE', required: false,
    description: `Guest architecture: ${ARCHES.join(' or ')}`, check: (a) => v.checkArch(a) }),
  field({ key: 'dns', flag: 'dns', kind: 'list', group: 'IDENTITY', required: false,
    description: 'DNS servers for resolv.conf, comma-separated IPs, or "none"', prompt: 'DNS servers (IP addresses, comma-separated; "none" for none)',
    check: (list) => v.checkEach(list, v.checkDns) }),
  field({ key: 'hosts', flag: 'host', kind: 'lines', group: 'IDENTITY', required: false,
    description: 'Extra /etc/hosts line "ADDRESS NAME" (repeatable)', prompt: 'Extra /etc/hosts lines ("ADDRESS NAME", comma-separated; empty for none)',
    check: (lines) => v.checkEach(lines, v.checkHostsLine) }),
  field({ key: 'tcpPorts', flag: 'tcp-ports', kind: 'list', group: 'IDENTITY', required: false,
    description: 'TCP ports the guest firewall opens, comma-separated, or "none"', prompt: 'TCP ports the guest firewall opens (comma-separated; "none" for none)',
    check: (ports) => v.checkPorts('tcp', ports) }),
  field({ key: 'udpPorts', flag: 'udp-ports', kind: 'list', group: 'IDENTITY', required: false,
    description: 'UDP ports the guest firewall opens, comma-separated, or "none"', prompt: 'UDP ports the guest firewall opens (comma-separated; empty for none)',
    check: (ports) => v.checkPorts('udp', ports) }),
  field({ key: 'adminKeys', flag: 'admin-key', kind: 'keys', group: 'IDENTITY', required: false,
    description: 'SSH public key (file or key text) for the admin user (repeatable; default: your own ~/.ssh key, else a fleet key pair `fleet ssh` uses)',
    prompt: 'SSH keys for the admin user', check: (keys) => checkKeys('admin', keys) }),
  field({ key: 'userKeys', flag: 'user-key', kind: 'keys', group: 'IDENTITY', required: false,
    description: 'SSH public key (file or key text) for the plain user (repeatable)', prompt: 'SSH keys for the plain user', check: (keys) => checkKeys('user', keys) }),
  field({ key: 'host', flag: 'libvirt-host', kind: 'text', group: 'HARDWARE', required: false,
    description: 'libvirt URI of the remote host the VM runs on, e.g. qemu+ssh://admin@kvm2.example.org/system', emptyDefault: 'this host, as --connect',
    prompt: 'libvirt host (a URI such as qemu+ssh://admin@kvm2/system; empty: this host)', check: (h) => checkHostUri(h) }),
] satisfies readonly Field[]

/** Flags that can be given more than once (one entry each). */
export const isMultiple = (f: Field): boolean => f.kind === 'lines' || f.kind === 'keys'

export function fieldOf<K extends FieldKey>(key: K): Field<K> {
  return FIELDS.find((f) => f.key === key) as unknown as Field<K>
}

export async function checkField<K extends FieldKey>(key: K, value: NewMachineSpec[K], host: HostFacts): Promise<string | undefined> {
  return fieldOf(key).check(value, host)
}

/** A typed answer (or flag text) as the field's value. */
export function parseAnswer(f: Field, text: string): NewMachineSpec[FieldKey] {
  switch (f.kind) {
    case 'list':
      return v.splitList(text)
    case 'lines':
      return text.trim() === 'none' ? [] : text.split(',').map((l) => l.trim()).filter(Boolean)
    case 'keys':
      return [text.trim()].filter(Boolean)
    default:
      return text.trim()
  }
}

/** A value as the prompt shows it as its default, and the summary and flag help list it. */
export function formatAnswer(f: Field, value: NewMachineSpec[FieldKey] | undefined): string {
  if (Array.isArray(value)) return value.length ? value.join(', ') : f.kind === 'keys' ? 'none' : ''
  return String(value ?? '')
}

/** The create-vm flags that give `spec` without any question (shown after the summary, to reuse in scripts). */
export function flagsFor(spec: NewMachineSpec, defaults: NewMachineSpec): string[] {
  const argv: string[] = []
  for (const f of FIELDS as readonly Field[]) {
    const value = spec[f.key]
    const def = defaults[f.key]
    if (!Array.isArray(value)) {
      if (f.required || String(value) !== String(def)) argv.push(`--${f.flag}`, String(value))
    } else if (isMultiple(f)) for (const item of value) argv.push(`--${f.flag}`, item)
    else if (value.join(',') !== (def as string[]).join(',')) argv.push(`--${f.flag}`, value.length ? value.join(',') : 'none')
  }
  return argv
}

/** The fields given as flags (absent flags stay absent, so prompts or defaults fill them); keys are read by `readKeys`. */
export async function specFromFlags(
  flags: Readonly<Record<string, unknown>>,
  readKeys: (texts: string[]) => Promise<string[]>,
): Promise<Partial<NewMachineSpec>> {
  const given: Partial<NewMachineSpec> = {}
  for (const f of FIELDS as readonly Field[]) {
    const value = flags[f.flag] as string | string[] | undefined
    if (value === undefined) continue
    const texts = Array.isArray(value) ? value : [value]
    const parsed = f.kind === 'keys' ? await readKeys(texts) : Array.isArray(value) ? texts : parseAnswer(f, value)
    Object.assign(given, { [f.key]: parsed }) // checked with the rest by validateFields
  }
  return given
}

/** argv as a person would type it: words with spaces or quotes in single quotes. */
export function shellWords(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')
}
