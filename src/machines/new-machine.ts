// Writing a brand-new machines/<name>/: machine.json plus identity files, all or nothing.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rename, rm, writeFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { hostAddresses } from '../adapters/libvirt-host.js'
import { generateHostKey } from '../adapters/ssh-keygen.js'
import { fsyncDir, fsyncFile } from '../util/fsx.js'
import { UserError } from '../errors.js'
import type { Paths } from '../repo.js'
import { encryptedName, encryptSecret } from '../secrets/machine-secrets.js'
import { readRecipients } from '../secrets/recipients.js'
import { generateHostKeyPair } from './host-key.js'
import { tryRunOn } from '../adapters/remote-shell.js'
import { isRemote, vmHost, type SshLogin } from '../hosts/host-uri.js'
import { allocateMac, allocateSshPort, allocateUuid, listeningIn, listeningTcpPorts } from './allocate.js'
import type { NewMachineSpec } from './fields.js'
import type { MachineJson } from './model.js'
import { loadAllMachines, machineDir } from './repository.js'

function lines(items: string[]): string {
  return items.length ? items.join('\n') + '\n' : ''
}

/** The identity files a new machine gets (the host key pair comes from ssh-keygen separately). */
export function identityFiles(name: string, spec: NewMachineSpec): Record<string, string> {
  return {
    'machine-id': randomBytes(16).toString('hex') + '\n',
    hostname: name + '\n',
    'resolv.conf': lines(spec.dns.map((d) => `nameserver ${d}`)),
    hosts: lines([`127.0.1.1 ${name}`, ...spec.hosts]),
    tcp_ports: lines(spec.tcpPorts.map(String)),
    udp_ports: lines(spec.udpPorts.map(String)),
    admin_authorized_keys: lines(spec.adminKeys.map((k) => k.trim())),
    user_authorized_keys: lines(spec.userKeys.map((k) => k.trim())),
  }
}

/**
 * A definition without its SSH host key pair (an example fleet; a repository whose private keys
 * stay out of git): makes the pair in machines/<name>/ — the private key encrypted (.age) where
 * the repository has .fleet/recipients, else a plain file 0600. Returns the private key it made
 * (undefined: the pair was there). Refuses half a pair: a lone public key belongs to a private
 * key kept somewhere else.
 */
export async function ensureHostKeyPair(paths: Paths, name: string, dir: string): Promise<Buffer | undefined> {
  const key = join(dir, 'ssh_host_ed25519_key')
  const priv = existsSync(key) || existsSync(join(dir, encryptedName('ssh_host_ed25519_key')))
  const pub = existsSync(`${key}.pub`)
  if (priv && pub) return undefined
  if (priv || pub) {
    throw new UserError(`machine ${name}: ${priv ? `${key}.pub` : key} is missing (its other half is there)`,
      priv ? 'Restore the .pub from git, or make it from the private key with ssh-keygen -y.' : `Restore the private key from your backup, or remove ${key}.pub so fleet makes a new pair.`)
  }
  const recipients = await readRecipients(paths)
  const pair = generateHostKeyPair(`root@${name}`)
  const hostKey = Buffer.from(pair.privateKey)
  const privFile = recipients ? join(dir, encryptedName('ssh_host_ed25519_key')) : key
  await writeFile(privFile, recipients ? await encryptSecret(hostKey, recipients) : hostKey, { mode: 0o600, flag: 'wx' })
  await writeFile(`${key}.pub`, pair.publicKey, { flag: 'wx' })
  for (const f of [privFile, `${key}.pub`]) await fsyncFile(f)
  await fsyncDir(dir)
  return hostKey
}

function remoteOf(uri: string | undefined) {
  const h = uri ? vmHost(uri) : undefined
  return h && isRemote(h) ? h : undefined
}

/** TCP ports listening on a remote host (its /proc/net/tcp{,6}); empty if they cannot be read. */
async function remoteListeningPorts(login: SshLogin): Promise<Set<number>> {
  const r = await tryRunOn(login, ['cat', '/proc/net/tcp', '/proc/net/tcp6'])
  return listeningIn(r.stdout)
}

/**
 * Writes machines/<name>/ atomically (temp folder, then rename). In a repository with
 * .fleet/recipients the host key is made in memory and only its encrypted form is written
 * (ssh_host_ed25519_key.age); the plaintext is returned so the caller can write /var without
 * decrypting. Without .fleet/recipients (not migrated yet) it is written as a plain file.
 */
export async function writeNewMachine(paths: Paths, name: string, spec: NewMachineSpec): Promise<{ dir: string; hostKey?: Buffer }> {
  const recipients = await readRecipients(paths)
  const dir = machineDir(paths, name)
  if (existsSync(dir)) throw new UserError(`machine ${name}: ${dir} already exists`, 'Pick another name, or use the existing definition.')
  const others = await loadAllMachines(paths)
  // Unique in this repository and against every domain on the VM's libvirt host (other fleets'
  // VMs too); the SSH forward's port free there (a remote host's ports are read over SSH).
  const remote = remoteOf(spec.host)
  const host = await hostAddresses(remote?.uri)
  const listening = remote ? await remoteListeningPorts(remote.ssh) : listeningTcpPorts()
  const json: MachineJson = {
    memory: spec.memory,
    vcpus: Number(spec.vcpus),
    varSize: spec.varSize,
    network: spec.network,
    mac: allocateMac(new Set([...others.map((m) => m.mac), ...host.macs.keys()])),
    uuid: allocateUuid(new Set([...others.map((m) => m.uuid), ...host.uuids.keys()])),
    arch: spec.arch,
    base: spec.base,
    ...(spec.network === 'user' ? { sshPort: allocateSshPort(new Set([...others.flatMap((m) => (m.sshPort ? [m.sshPort] : [])), ...listening])) } : {}),
    ...(spec.host ? { host: spec.host } : {}),
  }
  const tmp = await mkdtemp(join(paths.machines, `.${name}.new-`))
  let hostKey: Buffer | undefined
  try {
    await writeFile(join(tmp, 'machine.json'), JSON.stringify(json, null, 2) + '\n')
    for (const [f, content] of Object.entries(identityFiles(name, spec))) await writeFile(join(tmp, f), content)
    if (recipients) {
      const pair = generateHostKeyPair(`root@${name}`)
      hostKey = Buffer.from(pair.privateKey)
      await writeFile(join(tmp, encryptedName('ssh_host_ed25519_key')), await encryptSecret(hostKey, recipients))
      await writeFile(join(tmp, 'ssh_host_ed25519_key.pub'), pair.publicKey)
    } else {
      await generateHostKey(join(tmp, 'ssh_host_ed25519_key'), `root@${name}`)
      await chmod(join(tmp, 'ssh_host_ed25519_key'), 0o600)
    }
    await chmod(tmp, 0o755)
    // Durable before it is visible: every file, the folder, then the rename and machines/.
    for (const f of await readdir(tmp)) await fsyncFile(join(tmp, f))
    await fsyncDir(tmp)
    await rename(tmp, dir)
    await fsyncDir(paths.machines)
  } catch (e) {
    await rm(tmp, { recursive: true, force: true })
    throw e
  }
  return { dir, hostKey }
}
