// One validation for flags, prompts and hand-edited machine.json. Each check returns a message
// naming the field and the bad value, or undefined when the value is fine.
import { isIP } from 'node:net'
import { UserError } from '../errors.js'
import { parseSize } from '../util/units.js'
import { checkHostUri } from '../hosts/host-uri.js'
import { ARCHES, MACHINE_FIELDS, type MachineJson } from './model.js'

export type Check<T = string> = (value: T) => string | undefined

export const LIMITS = {
  memoryMin: 64 * 1024 ** 2,
  memoryMax: 4 * 1024 ** 4,
  vcpusMax: 512,
  varMin: 16 * 1024 ** 2,
  varMax: 64 * 1024 ** 4,
}

export const checkName: Check = (v) =>
  /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(v)
    ? undefined
    : `name "${v}" is not a hostname label (a-z, 0-9 and '-', 1-63 characters, not starting or ending with '-')`

export const checkChannel: Check = (v) =>
  /^[a-z0-9][a-z0-9._-]{0,63}$/.test(v) ? undefined : `base channel "${v}" must be lowercase letters, digits, '.', '_' or '-'`

function sizeCheck(field: string, min: number, max: number): Check {
  return (v) => {
    const bytes = parseSize(String(v))
    if (bytes === undefined) return `${field} "${v}" is not a size like 512M or 2G`
    if (bytes < min || bytes > max) return `${field} "${v}" is outside ${min / 1024 ** 2}M..${max / 1024 ** 4}T`
    if (bytes % (1024 * 1024) !== 0) return `${field} "${v}" must be a whole number of MiB`
    return undefined
  }
}

export const checkMemory = sizeCheck('memory', LIMITS.memoryMin, LIMITS.memoryMax)
export const checkVarSize = sizeCheck('varSize', LIMITS.varMin, LIMITS.varMax)

export const checkVcpus: Check<number | string> = (v) => {
  const n = Number(v)
  return Number.isInteger(n) && n >= 1 && n <= LIMITS.vcpusMax && /^\d+$/.test(String(v))
    ? undefined
    : `vcpus "${v}" must be a whole number from 1 to ${LIMITS.vcpusMax}`
}

export const checkNetwork: Check = (v) =>
  /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(v) ? undefined : `network "${v}" is not a libvirt network name, "user" or "none"`

export const checkMac: Check = (v) =>
  /^52:54:00(:[0-9a-f]{2}){3}$/.test(v) ? undefined : `mac "${v}" must look like 52:54:00:xx:xx:xx (lowercase hex)`

export const checkUuid: Check = (v) =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v) ? undefined : `uuid "${v}" is not a lowercase RFC 4122 UUID`

export const checkArch: Check = (v) => (ARCHES.includes(v as never) ? undefined : `arch "${v}" must be one of ${ARCHES.join(', ')}`)

export const checkPort: Check<number | string> = (v) =>
  /^\d+$/.test(String(v)) && Number(v) >= 1 && Number(v) <= 65535 ? undefined : `port "${v}" must be a number from 1 to 65535`

/** A list of ports as typed ("22, 80 443"): each valid, none twice. */
export function checkPorts(proto: string, list: readonly string[]): string | undefined {
  const seen = new Set<number>()
  for (const p of list) {
    const bad = checkPort(p)
    if (bad) return `${proto} ${bad}`
    if (seen.has(Number(p))) return `${proto} port ${p} is listed twice`
    seen.add(Number(p))
  }
  return undefined
}

export const checkDns: Check = (v) => (isIP(v) ? undefined : `DNS server "${v}" is not an IP address`)

/** An extra /etc/hosts line: "ADDRESS NAME [NAME...]", address an IP. */
export const checkHostsLine: Check = (v) => {
  if (/[\n\r]/.test(v) || !/^\S+\s+\S/.test(v.trim())) return `hosts line "${v}" must be "ADDRESS NAME..."`
  const [addr, ...words] = v.trim().split(/\s+/)
  const comment = words.findIndex((w) => w.startsWith('#'))
  const names = comment < 0 ? words : words.slice(0, comment)
  if (!names.length) return `hosts line "${v}" must be "ADDRESS NAME..."`
  if (!isIP(addr!)) return `hosts line "${v}": address "${addr}" is not an IP address`
  const name = names.find((n) => checkHostname(n))
  return name === undefined ? undefined : `hosts line "${v}": name "${name}" is not an RFC 1123 host name`
}

/** Memory the guest may not have: more than the host's RAM. */
export function checkMemoryFits(v: string, hostBytes: number): string | undefined {
  const bytes = parseSize(v)
  if (bytes === undefined || bytes <= hostBytes) return undefined
  return `memory "${v}" is more than this host has (${Math.floor(hostBytes / 1024 ** 2)}M)`
}

/** A network must exist on the host unless it is "user" or "none"; undefined `hostNetworks` skips the check. */
export function checkNetworkOnHost(v: string, hostNetworks: readonly string[] | undefined): string | undefined {
  if (v === 'user' || v === 'none' || !hostNetworks || hostNetworks.includes(v)) return undefined
  return `network "${v}" is not a libvirt network on this host (it has: ${[...hostNetworks, 'user', 'none'].join(', ')})`
}

/** The first message `check` gives for any item of `list`. */
export function checkEach(list: readonly string[], check: Check): string | undefined {
  for (const item of list) {
    const bad = check(item)
    if (bad) return bad
  }
  return undefined
}

export const checkMachineId: Check = (v) =>
  !/^[0-9a-f]{32}$/.test(v) ? `machine-id "${v}" must be 32 lowercase hex digits`
    : /^0+$/.test(v) ? `machine-id "${v}" must not be all zeros` : undefined

/** A host name per RFC 1123: dot-separated labels of a-z, 0-9 and '-', at most 253 characters. */
export const checkHostname: Check = (v) => {
  const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/
  if (v.length === 0) return 'hostname is empty'
  if (v.length > 253 || !v.split('.').every((l) => label.test(l))) {
    return `hostname "${v}" is not an RFC 1123 host name (labels of letters, digits and '-', 1-63 characters each, 253 at most)`
  }
  return undefined
}

const RESOLV_OPTION = /^(ndots|timeout|attempts):\d{1,2}$|^(debug|rotate|no-check-names|inet6|edns0|single-request|single-request-reopen|no-tld-query|use-vc|no-reload|trust-ad|no-aaaa)$/

/** A resolv.conf line: nameserver IP, search/domain host names, options from resolv.conf(5). */
export const checkResolvLine: Check = (v) => {
  const [word, ...rest] = v.split(/\s+/)
  const bad = (why: string) => `resolv.conf line "${v}": ${why}`
  switch (word) {
    case 'nameserver':
      return rest.length !== 1 ? bad('nameserver takes one IP address') : checkDns(rest[0]!)
    case 'search':
    case 'domain': {
      const name = rest.find((n) => checkHostname(n.replace(/\.$/, '')))
      return rest.length === 0 ? bad(`${word} needs a domain`) : name !== undefined ? bad(`"${name}" is not a domain name`) : undefined
    }
    case 'options': {
      const opt = rest.find((o) => !RESOLV_OPTION.test(o))
      return rest.length === 0 ? bad('options needs an option') : opt !== undefined ? bad(`unknown option "${opt}"`) : undefined
    }
    case 'sortlist':
      return rest.every((p) => isIP(p.split('/')[0]!)) && rest.length ? undefined : bad('sortlist takes ADDRESS[/NETMASK] pairs')
    default:
      return bad(`unknown keyword "${word}" (nameserver, search, domain, options, sortlist)`)
  }
}

/** Identity files are text: UTF-8 without NUL or other control characters (tab and newline aside). */
export function checkText(buf: Buffer): string | undefined {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf)
  } catch {
    return 'is not UTF-8 text'
  }
  const ctl = /[\u0000-\u0008\u000b-\u001f\u007f]/.exec(text)
  return ctl ? `holds the control character ${JSON.stringify(ctl[0])} at offset ${ctl.index}` : undefined
}

/** Lines of a key or identity file that carry data (no blanks, no comments), trimmed. */
export function dataLines(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
}

/** Splits "a, b c" into ["a","b","c"]; "none" is the empty list. */
export function splitList(text: string): string[] {
  return text.trim() === 'none' ? [] : text.split(/[\s,]+/).filter(Boolean)
}

/** Fields that must be unique across the fleet: two machines may not share them. */
const UNIQUE_FIELDS = ['mac', 'uuid', 'sshPort'] as const

/** Two machines sharing a MAC, UUID or SSH forward port: an error naming both. */
export function checkFleetUnique(machines: readonly (Pick<MachineJson, (typeof UNIQUE_FIELDS)[number]> & { name: string; dir: string })[]): void {
  for (const field of UNIQUE_FIELDS) {
    const owner = new Map<unknown, string>()
    for (const m of machines) {
      const value = m[field]
      if (value === undefined) continue
      const other = owner.get(value)
      if (other !== undefined) {
        throw new UserError(`machine ${m.name}: ${field} "${value}" is also used by machine ${other}`,
          `Give one of them another ${field} in ${m.dir}/machine.json or machines/${other}/machine.json; fleet allocates unique ones for new machines.`)
      }
      owner.set(value, m.name)
    }
  }
}

/** Validates a parsed machine.json object; returns the typed value or throws naming file and field. */
export function validateMachineJson(name: string, file: string, raw: unknown): MachineJson {
  const fail = (msg: string): never => {
    throw new UserError(`machine ${name}: ${file}: ${msg}`, `Edit ${file} and fix that field.`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('must be a JSON object')
  const obj = raw as Record<string, unknown>
  for (const key of Object.keys(obj)) {
    if (!MACHINE_FIELDS.includes(key as keyof MachineJson)) fail(`unknown field "${key}" (known: ${MACHINE_FIELDS.join(', ')})`)
  }
  const str = (k: keyof MachineJson): string => {
    const v = obj[k]
    if (typeof v !== 'string') return fail(`field "${k}" must be a string, got ${JSON.stringify(v)}`)
    return v
  }
  const checks: [keyof MachineJson, Check][] = [
    ['memory', checkMemory], ['varSize', checkVarSize], ['network', checkNetwork], ['mac', checkMac],
    ['uuid', checkUuid], ['arch', checkArch], ['base', checkChannel],
  ]
  for (const [k, check] of checks) {
    const bad = check(str(k))
    if (bad) fail(bad)
  }
  if (typeof obj.vcpus !== 'number') fail(`field "vcpus" must be a number, got ${JSON.stringify(obj.vcpus)}`)
  const badVcpus = checkVcpus(obj.vcpus as number)
  if (badVcpus) fail(badVcpus)
  if (obj.sshPort !== undefined) {
    const badPort = typeof obj.sshPort === 'number' ? checkPort(obj.sshPort) : `sshPort must be a number`
    if (badPort) fail(`sshPort: ${badPort}`)
  }
  if (obj.host !== undefined) {
    const badHost = typeof obj.host === 'string' ? checkHostUri(obj.host) : 'host must be a string (a libvirt URI)'
    if (badHost) fail(badHost)
  }
  return obj as unknown as MachineJson
}
