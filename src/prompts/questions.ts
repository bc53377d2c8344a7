// The new-machine prompts as data: which field each sets, the create-vm flag that sets the same
// field, and how a typed answer becomes a value. A test checks every `flag` exists on create-vm.
import type { NewMachineSpec } from '../machines/new-machine.js'
import { splitList } from '../machines/validate.js'

export type QuestionKind =
  | 'text' // one value as typed: 512M
  | 'list' // words separated by commas or spaces: "22, 80"; "none" for none
  | 'lines' // entries that contain spaces, separated by commas: "10.0.0.5 db, 10.0.0.6 cache"
  | 'channel' // a base channel from the store
  | 'network' // a libvirt network, user or none
  | 'keys' // SSH public keys: found in ~/.ssh, or pasted

export type AskedField = Exclude<keyof NewMachineSpec, 'arch'>

export interface Question {
  key: AskedField
  /** The create-vm flag giving the same value; given as a flag, the question is not asked. */
  flag: string
  message: string
  kind: QuestionKind
  /** Without a terminal and without --yes, a missing required value is an error naming its flag. */
  required: boolean
}

export const QUESTIONS: readonly Question[] = [
  { key: 'memory', flag: 'memory', message: 'Memory (e.g. 512M, 2G)', kind: 'text', required: true },
  { key: 'vcpus', flag: 'vcpus', message: 'Virtual CPUs', kind: 'text', required: true },
  { key: 'varSize', flag: 'var-size', message: 'Size of the /var disk (all mutable state; e.g. 1G)', kind: 'text', required: true },
  { key: 'base', flag: 'base', message: 'Base image channel', kind: 'channel', required: true },
  { key: 'network', flag: 'network', message: 'Network', kind: 'network', required: true },
  { key: 'dns', flag: 'dns', message: 'DNS servers (IP addresses, comma-separated; "none" for none)', kind: 'list', required: false },
  { key: 'hosts', flag: 'host', message: 'Extra /etc/hosts lines ("ADDRESS NAME", comma-separated; empty for none)', kind: 'lines', required: false },
  { key: 'tcpPorts', flag: 'tcp-ports', message: 'TCP ports the guest firewall opens (comma-separated; "none" for none)', kind: 'list', required: false },
  { key: 'udpPorts', flag: 'udp-ports', message: 'UDP ports the guest firewall opens (comma-separated; empty for none)', kind: 'list', required: false },
  { key: 'adminKeys', flag: 'admin-key', message: 'SSH keys for the admin user', kind: 'keys', required: false },
  { key: 'userKeys', flag: 'user-key', message: 'SSH keys for the plain user', kind: 'keys', required: false },
]

/** A typed answer (or flag text) as the field's value. */
export function parseAnswer(q: Question, text: string): NewMachineSpec[AskedField] {
  switch (q.kind) {
    case 'list':
      return splitList(text)
    case 'lines':
      return text.trim() === 'none' ? [] : text.split(',').map((l) => l.trim()).filter(Boolean)
    case 'keys':
      return [text.trim()].filter(Boolean)
    default:
      return text.trim()
  }
}

/** A value as the prompt shows it as its default, and the summary lists it. */
export function formatAnswer(q: Question, value: NewMachineSpec[keyof NewMachineSpec] | undefined): string {
  if (Array.isArray(value)) return value.length ? value.join(', ') : q.kind === 'keys' ? 'none' : ''
  return String(value ?? '')
}

/** The create-vm flags that give `spec` without any question (shown after the summary, to reuse in scripts). */
export function flagsFor(spec: NewMachineSpec, defaults: NewMachineSpec): string[] {
  const argv: string[] = []
  for (const q of QUESTIONS) {
    const v = spec[q.key]
    if (!Array.isArray(v)) argv.push(`--${q.flag}`, String(v))
    else if (q.kind === 'lines' || q.kind === 'keys') for (const item of v) argv.push(`--${q.flag}`, item)
    else if (v.join(',') !== (defaults[q.key] as string[]).join(',')) argv.push(`--${q.flag}`, v.length ? v.join(',') : 'none')
  }
  if (spec.arch !== defaults.arch) argv.push('--arch', spec.arch)
  return argv
}

/** argv as a person would type it: words with spaces or quotes in single quotes. */
export function shellWords(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')
}
