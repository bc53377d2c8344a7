// fleet ssh: where a VM is reached and with which host key. The known_hosts entry comes from
// machines/NAME/ssh_host_ed25519_key.pub, the key fleet itself put on the /var disk, so the very
// first connection is verified.
import { task, type Log, type Task } from '../util/progress.js'
import type { VmName } from '../name.js'
import { existsSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { jumpThrough } from '../adapters/remote-shell.js'
import { remoteHost } from './remote-vm.js'
import * as libvirt from '../adapters/libvirt.js'
import { sshProbe, type SshTarget } from '../adapters/ssh.js'
import { UserError } from '../errors.js'
import { loadMachine } from '../machines/repository.js'
import { vmFiles, type Paths } from '../repo.js'
import { writeFileAtomic } from '../util/fsx.js'
import { fleetKeyFile, fleetPublicKey } from './login-key.js'

export interface SshOptions {
  user: string
  identity?: string
  batch: boolean
}

/** The one condition --wait waits out: a VM on a libvirt network without a lease yet. */
class NoAddressYet extends UserError {}

export async function sshTarget(paths: Paths, name: VmName, o: SshOptions): Promise<SshTarget> {
  const m = await loadMachine(paths, name)
  const pubFile = join(m.dir, 'ssh_host_ed25519_key.pub')
  if (!existsSync(pubFile)) throw new UserError(`machine ${name}: ${pubFile} is missing, so the host key cannot be verified`)
  const [type, key] = (await readFile(pubFile, 'utf8')).trim().split(/\s+/)
  const files = vmFiles(paths, name)
  // A VM on a remote host: asked there, reached through it (its forwards and networks are that host's).
  const remote = remoteHost(m)
  if (!remote && !existsSync(files.dir)) throw new UserError(`machine ${name} has no VM yet (${files.dir} is missing)`, `Create it: fleet create-vm ${name} --start`)
  const uri = remote?.uri
  const state = await libvirt.domainState(name, uri)
  if (state !== 'running') throw new UserError(`machine ${name} is ${state ?? 'not defined'}, not running`, `Start it: fleet start-vm ${name}`)

  let host: string
  let port = 22
  if (m.network === 'none') {
    throw new UserError(`machine ${name} has no network (network "none")`, `Use the serial console: fleet console ${name}`)
  } else if (m.network === 'user') {
    if (!m.sshPort) throw new UserError(`machine ${name}: network "user" but no sshPort in ${join(m.dir, 'machine.json')}`)
    host = '127.0.0.1'
    port = m.sshPort
  } else {
    const ips = await libvirt.domainIPv4(name, uri)
    if (!ips.length) throw new NoAddressYet(`machine ${name}: no IPv4 address on network ${m.network} yet`, 'It may still be booting; try again, or pass --wait SECONDS.')
    host = ips[0]!
  }
  const knownHosts = remote ? join(paths.state, 'ssh', `${name}.known_hosts`) : join(files.dir, 'known_hosts')
  if (remote) await mkdir(dirname(knownHosts), { recursive: true, mode: 0o700 })
  await writeFileAtomic(knownHosts, `${name} ${type} ${key}\n`)
  return { host, port, user: o.user, alias: name, knownHosts, identity: o.identity ?? (await fleetLoginKey(paths, m.dir, o.user)), batch: o.batch, ...(remote ? { proxy: jumpThrough(remote.ssh) } : {}) }
}

/** fleet's own key pair, when the account's authorized keys hold it (create-vm put it there for want of yours). */
async function fleetLoginKey(paths: Paths, dir: string, user: string): Promise<string | undefined> {
  const pub = await fleetPublicKey(paths)
  const authorized = join(dir, `${user}_authorized_keys`)
  if (!pub || !existsSync(authorized)) return undefined
  const blob = pub.split(/\s+/)[1]
  const keys = (await readFile(authorized, 'utf8')).split('\n').map((l) => l.trim().split(/\s+/)[1])
  return blob && keys.includes(blob) ? fleetKeyFile(paths) : undefined
}

const KEY_MISMATCH = /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/

/** Waits until a login works; stops at once on a host key mismatch (never trusted, never retried). */
export async function waitForSsh(paths: Paths, name: VmName, o: SshOptions, timeoutS: number, log: Log): Promise<SshTarget> {
  return task(log, `Waiting up to ${timeoutS} s for SSH on ${name}`, (t) => waitLoop(paths, name, o, timeoutS, t))
}

async function waitLoop(paths: Paths, name: VmName, o: SshOptions, timeoutS: number, t: Task): Promise<SshTarget> {
  const start = Date.now()
  const deadline = start + timeoutS * 1000
  let lastError = ''
  let target: SshTarget | undefined
  for (;;) {
    try {
      target = await sshTarget(paths, name, o) // each round: a VM that stopped fails at once
    } catch (e) {
      if (!(e instanceof NoAddressYet)) throw e
      lastError = e.message
    }
    if (target) {
      const r = await sshProbe(target)
      if (r.ok) return target
      if (KEY_MISMATCH.test(r.error)) {
        throw new UserError(`machine ${name}: the guest's SSH host key does not match machines/${name}/ssh_host_ed25519_key.pub`,
          `Its /var/identity may be stale: fleet upgrade ${name} resyncs identity.`)
      }
      lastError = r.error
    }
    if (Date.now() >= deadline) throw new UserError(`machine ${name}: no SSH login within ${timeoutS} s (${lastError || 'no answer'})`, `Look at the console: fleet console ${name} --log --tail 40`)
    t.status(`${Math.round((Date.now() - start) / 1000)} s${target ? `, ${target.host}:${target.port}` : ', no address yet'}`)
    await new Promise((r) => setTimeout(r, 2000))
  }
}
