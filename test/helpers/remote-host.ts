// A second libvirt daemon fleet can reach only through qemu+ssh:// on the loopback address: the
// qemu:///session daemon of the local user `fleetremote` (made here, idempotently), behind an sshd
// this helper starts on a free 127.0.0.1 port with its own host key and config (no system sshd is
// touched). Its disks live in that user's home; the system daemon sees none of them.
import { execa } from 'execa'
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export const REMOTE_USER = 'fleetremote'

export interface RemoteHost {
  uri: string
  port: number
  key: string
  virsh: (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>
  /** A command run on the "host" as its user, over the same ssh login (for checks). */
  ssh: (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>
  /** The sshd's log so far (with `logLevel: 'DEBUG1'` it names every forwarded connection). */
  sshdLog: () => string
  stop: () => Promise<void>
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer()
    s.once('error', rej)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => res(port))
    })
  })
}

export async function startRemoteHost(dir: string, opts: { logLevel?: 'INFO' | 'DEBUG1' } = {}): Promise<RemoteHost> {
  if ((await execa('id', [REMOTE_USER], { reject: false })).exitCode !== 0) await execa('useradd', ['-m', '-s', '/bin/sh', REMOTE_USER])
  await execa('usermod', ['-p', '*', REMOTE_USER]) // no password, but not locked: sshd lets a key in
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
  const key = join(dir, 'client_key')
  const hostKey = join(dir, 'host_key')
  for (const k of [key, hostKey]) if (!existsSync(k)) await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', k])
  const home = (await execa('sh', ['-c', `getent passwd ${REMOTE_USER} | cut -d: -f6`])).stdout.trim()
  const sshDir = join(home, '.ssh')
  await execa('install', ['-d', '-m', '700', '-o', REMOTE_USER, '-g', REMOTE_USER, sshDir])
  const auth = join(sshDir, 'authorized_keys')
  const pub = readFileSync(`${key}.pub`, 'utf8')
  if (!existsSync(auth) || !readFileSync(auth, 'utf8').includes(pub.trim())) appendFileSync(auth, pub)
  await execa('chown', [`${REMOTE_USER}:${REMOTE_USER}`, auth])
  chmodSync(auth, 0o600)
  const port = await freePort()
  const config = join(dir, 'sshd_config')
  writeFileSync(config, [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, `PidFile ${join(dir, 'sshd.pid')}`,
    'AuthorizedKeysFile .ssh/authorized_keys', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
    'UsePAM no', `AllowUsers ${REMOTE_USER}`, 'StrictModes no', `LogLevel ${opts.logLevel ?? 'INFO'}`, '',
  ].join('\n'))
  mkdirSync('/run/sshd', { recursive: true })
  await execa('/usr/sbin/sshd', ['-f', config, '-E', join(dir, 'sshd.log')])
  const login = ['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-i', key, '-p', String(port), `${REMOTE_USER}@127.0.0.1`]
  const ssh = async (args: string[]) => {
    const r = await execa('ssh', [...login, '--', ...args], { reject: false })
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }
  }
  for (let i = 0; (await ssh(['true'])).code !== 0; i++) {
    if (i > 50) throw new Error(`sshd on 127.0.0.1:${port} did not come up:\n${readFileSync(join(dir, 'sshd.log'), 'utf8')}`)
    await sleep(100)
  }
  const uri = `qemu+ssh://${REMOTE_USER}@127.0.0.1:${port}/session?keyfile=${key}&no_verify=1&no_tty=1`
  const virsh = async (args: string[]) => {
    const r = await execa('virsh', ['-c', uri, ...args], { reject: false })
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }
  }
  return {
    uri, port, key, virsh, ssh,
    sshdLog: () => readFileSync(join(dir, 'sshd.log'), 'utf8'),
    stop: async () => {
      const pid = Number(readFileSync(join(dir, 'sshd.pid'), 'utf8').trim())
      if (pid > 1) process.kill(pid, 'SIGTERM')
    },
  }
}
