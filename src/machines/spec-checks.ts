// The one check per setting of a new machine. Flags, prompts (which re-ask on a message) and
// machine.json loading all go through these, so a value refused in one place is refused in all.
import { existsSync } from 'node:fs'
import { fingerprint } from '../adapters/ssh-keygen.js'
import { UserError } from '../errors.js'
import { checkHostKeyPair } from './host-key.js'
import type { Machine } from './model.js'
import type { NewMachineSpec } from './new-machine.js'
import * as v from './validate.js'

/** What the checks need to know about this host. */
export interface HostFacts {
  /** Bytes of RAM (os.totalmem()). */
  totalMemory: number
  /** libvirt network names; undefined when they could not be listed (then any name passes). */
  networks?: readonly string[]
}

type FieldCheck<K extends keyof NewMachineSpec> = (value: NewMachineSpec[K], host: HostFacts) => string | undefined | Promise<string | undefined>

async function checkKeys(kind: string, keys: readonly string[]): Promise<string | undefined> {
  for (const k of keys) {
    if (!(await fingerprint(k))) return `${kind} authorized key "${k.length > 40 ? k.slice(0, 40) + '…' : k}" is not an SSH public key (ssh-keygen -l cannot read it)`
  }
  return undefined
}

export const FIELD_CHECKS: { [K in keyof NewMachineSpec]: FieldCheck<K> } = {
  memory: (m, host) => v.checkMemory(m) ?? v.checkMemoryFits(m, host.totalMemory),
  vcpus: (n) => v.checkVcpus(n),
  varSize: (s) => v.checkVarSize(s),
  base: (c) => v.checkChannel(c),
  network: (n, host) => v.checkNetwork(n) ?? v.checkNetworkOnHost(n, host.networks),
  arch: (a) => v.checkArch(a),
  dns: (list) => v.checkEach(list, v.checkDns),
  hosts: (lines) => v.checkEach(lines, v.checkHostsLine),
  tcpPorts: (ports) => v.checkPorts('tcp', ports),
  udpPorts: (ports) => v.checkPorts('udp', ports),
  adminKeys: (keys) => checkKeys('admin', keys),
  userKeys: (keys) => checkKeys('user', keys),
}

/** The create-vm flag that sets each field (prompts name it in their data too; a test keeps them equal). */
export const FIELD_FLAGS: { [K in keyof NewMachineSpec]: string } = {
  memory: 'memory', vcpus: 'vcpus', varSize: 'var-size', base: 'base', network: 'network', arch: 'arch',
  dns: 'dns', hosts: 'host', tcpPorts: 'tcp-ports', udpPorts: 'udp-ports', adminKeys: 'admin-key', userKeys: 'user-key',
}

export async function checkField<K extends keyof NewMachineSpec>(key: K, value: NewMachineSpec[K], host: HostFacts): Promise<string | undefined> {
  return FIELD_CHECKS[key](value, host)
}

/** Checks the fields present in `spec`; throws a UserError naming the machine, field, value and flag. */
export async function validateFields(name: string, spec: Partial<NewMachineSpec>, host: HostFacts): Promise<void> {
  const bad = v.checkName(name)
  if (bad) throw new UserError(`machine ${name}: ${bad}`, 'Pick a name that is a hostname label, e.g. web1 or db-2.')
  for (const key of Object.keys(FIELD_CHECKS) as (keyof NewMachineSpec)[]) {
    const value = spec[key]
    if (value === undefined) continue
    const msg = await checkField(key, value as never, host)
    if (msg) throw new UserError(`machine ${name}: ${msg}`, `Pass a valid --${FIELD_FLAGS[key]} (\`fleet create-vm --help\` says what fits).`)
  }
}

/** Host-dependent checks of an existing machine.json (the rest ran when it was loaded). */
export function checkMachineOnHost(m: Machine, host: HostFacts): void {
  const bad = v.checkMemoryFits(m.memory, host.totalMemory) ?? v.checkNetworkOnHost(m.network, host.networks)
  if (bad) throw new UserError(`machine ${m.name}: ${m.dir}/machine.json: ${bad}`, `Edit ${m.dir}/machine.json and fix that field.`)
}

/** The data lines of an identity file that may be absent. */
function fileLines(buf: Buffer | undefined): string[] {
  return v.dataLines(buf?.toString('utf8') ?? '')
}

/** Hand-edited identity files get the same checks as the flags that write them. */
export async function validateIdentity(m: Pick<Machine, 'name' | 'dir'>, files: ReadonlyMap<string, Buffer>): Promise<void> {
  const where = (f: string) => `machine ${m.name}: ${m.dir}/${f}`
  const fail = (f: string, msg: string): never => {
    throw new UserError(`${where(f)}: ${msg}`, `Edit ${m.dir}/${f} and fix that line.`)
  }
  for (const [f, buf] of files) {
    const bad = v.checkText(buf)
    if (bad) fail(f, `${f} ${bad}`)
  }
  for (const [f, check] of [['machine-id', v.checkMachineId], ['hostname', v.checkHostname]] as const) {
    const text = files.get(f)?.toString('utf8')
    if (text === undefined) continue
    const bad = /\n./s.test(text.trimEnd()) ? `${f} ${JSON.stringify(text.trimEnd())} must be a single line` : check(text.trim())
    if (bad) fail(f, bad)
  }
  const priv = files.get('ssh_host_ed25519_key')
  const pub = files.get('ssh_host_ed25519_key.pub')
  if (priv && pub) {
    const bad = checkHostKeyPair(priv.toString('utf8'), pub.toString('utf8'))
    // An encrypted key (.age) is restored from git; a new plaintext one would land in the repository.
    const encrypted = existsSync(`${m.dir}/ssh_host_ed25519_key.age`)
    if (bad) throw new UserError(`${where(bad.file)}${encrypted && bad.file === 'ssh_host_ed25519_key' ? '.age (decrypted)' : ''}: ${bad.msg}`, encrypted ? `Restore ssh_host_ed25519_key.age and ssh_host_ed25519_key.pub from git (git checkout -- ${m.dir}).` : `Restore the pair from git, or make a new one: ssh-keygen -t ed25519 -N '' -f ${m.dir}/ssh_host_ed25519_key`)
  }
  for (const [f, proto] of [['tcp_ports', 'tcp'], ['udp_ports', 'udp']] as const) {
    const bad = v.checkPorts(proto, fileLines(files.get(f)))
    if (bad) fail(f, bad)
  }
  for (const line of fileLines(files.get('resolv.conf'))) {
    const bad = v.checkResolvLine(line)
    if (bad) fail('resolv.conf', bad)
  }
  for (const line of fileLines(files.get('hosts'))) {
    const bad = v.checkHostsLine(line)
    if (bad) fail('hosts', bad)
  }
  for (const [f, kind] of [['admin_authorized_keys', 'admin'], ['user_authorized_keys', 'user']] as const) {
    const bad = await checkKeys(kind, fileLines(files.get(f)))
    if (bad) fail(f, bad)
  }
}
