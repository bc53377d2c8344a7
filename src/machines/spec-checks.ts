// The one check per setting of a new machine. Flags, prompts (which re-ask on a message) and
// machine.json loading all go through these, so a value refused in one place is refused in all.
import { existsSync } from 'node:fs'
import { UserError } from '../errors.js'
import { checkKeys, FIELDS, type Field, type HostFacts, type NewMachineSpec } from './fields.js'
import { checkHostKeyPair } from './host-key.js'
import type { Machine } from './model.js'
import * as v from './validate.js'

export type { HostFacts } from './fields.js'

/** Checks the fields present in `spec`; throws a UserError naming the machine, field, value and flag. */
export async function validateFields(name: string, spec: Partial<NewMachineSpec>, host: HostFacts): Promise<void> {
  const bad = v.checkName(name)
  if (bad) throw new UserError(`machine ${name}: ${bad}`, 'Pick a name that is a hostname label, e.g. web1 or db-2.')
  for (const f of FIELDS as readonly Field[]) {
    const value = spec[f.key]
    if (value === undefined) continue
    const msg = await f.check(value as never, host)
    if (msg) throw new UserError(`machine ${name}: ${msg}`, `Pass a valid --${f.flag} (\`fleet create-vm --help\` says what fits).`)
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
