// The main job on real components: build the Debian base image (bootstrap cached in
// FLEET_CACHE_DIR across runs), create a VM on user networking with an SSH forward, boot it
// under TCG and check the guest contract over `fleet ssh`; then rebuild the image, upgrade,
// and find /home data and identity intact.
import { execa } from 'execa'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { fleet, sandbox, virsh, type Run } from '../helpers/fleet.js'
import { consoleLog, tail } from '../helpers/guest.js'

const sb = sandbox()
const vm = sb.name('deb')
// No --admin-key and a home without ~/.ssh keys: create-vm makes fleet's own login pair, `fleet ssh` uses it.
const home = join(sb.dir, 'home')
const fleetKey = join(sb.state, 'ssh', 'id_ed25519')
const cache = process.env.FLEET_CACHE_DIR ?? '/var/tmp/fleet-test-cache'
const env = { ...sb.env, FLEET_CACHE_DIR: cache, HOME: home, SUDO_USER: '' }
const run = (args: string[], timeoutMs = 600_000) => fleet({ env }, args, { timeoutMs })

interface Built { digest: string; seconds: Record<string, number>; bootstrapCached: boolean; size: number; virtualSize: number }
const build = async (): Promise<Built> => {
  const r = await run(['build', '--builder', 'debian', '--compress', '--json'], 1_200_000)
  expect(r.code, r.stderr.slice(-3000)).toBe(0)
  return JSON.parse(r.stdout) as Built
}

/** fleet ssh with no key given (fleet's own pair); fails with the console tail if the guest never answers. */
async function ssh(command: string, waitS = 0): Promise<Run> {
  const r = await run(['ssh', vm, ...(waitS ? ['--wait', String(waitS)] : []), '--', command], (waitS + 60) * 1000)
  if (r.code !== 0 && waitS) throw new Error(`fleet ssh ${vm}: exit ${r.code}\n${r.stderr}\n--- console ---\n${tail(consoleLog(sb, vm), 60)}`)
  return r
}

describe.skipIf(libvirtMissing)('Debian base image: build, boot, fleet ssh, upgrade', () => {
  let first: Built
  beforeAll(async () => {
    mkdirSync(cache, { recursive: true })
    mkdirSync(home, { recursive: true })
    first = await build()
    console.log(`debian build: ${JSON.stringify(first.seconds)}, ${(first.size / 2 ** 20).toFixed(0)} MiB (zstd), bootstrap ${first.bootstrapCached ? 'cached' : 'cold'}`)
  }, 1_300_000)
  afterAll(async () => {
    await virsh(['destroy', vm])
    await virsh(['undefine', '--nvram', vm])
    sb.cleanup()
  })

  it('boots to SSH with no key given (fleet\'s own pair), with its own identity: machine-id, journal on /var, read-only root, firewall up, host key verified', async () => {
    const c = await run(['create-vm', vm, '--network', 'user', '--memory', '1G', '--tcp-ports', '22,8080', '--yes', '--start'])
    expect(c.code, c.stderr).toBe(0)
    expect(c.stdout).toContain(`login admin with fleet's key pair ${fleetKey} (made now); \`fleet ssh ${vm}\` uses it`)
    expect(statSync(fleetKey).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(sb.repo, 'machines', vm, 'admin_authorized_keys'), 'utf8')).toBe(readFileSync(`${fleetKey}.pub`, 'utf8'))
    const t0 = performance.now()
    await ssh('true', 420)
    console.log(`start → SSH login: ${((performance.now() - t0) / 1000).toFixed(1)} s`)

    const id = readFileSync(join(sb.repo, 'machines', vm, 'machine-id'), 'utf8').trim()
    const r = await ssh('cat /etc/machine-id; hostname; findmnt -no OPTIONS /; ls /var/log/journal; systemctl is-active fleet-firewall ssh; id -nG; sudo nft list chain inet fleet input | grep -c "tcp dport { 22, 8080 } accept"')
    expect(r.code, r.stderr).toBe(0)
    const [mid, host, rootOpts, journal, fw, sshd, groups, tcpRule] = r.stdout.trim().split('\n')
    expect(mid).toBe(id)
    expect(host).toBe(vm)
    expect(rootOpts!.split(',')).toContain('ro')
    expect(journal!.split(/\s+/)).toContain(id)
    expect([fw, sshd]).toEqual(['active', 'active'])
    expect(groups!.split(' ')).toContain('sudo')
    expect(tcpRule).toBe('1') // the firewall opens exactly the ports in tcp_ports
    // The first connection was already verified: fleet's known_hosts holds the machine's own key.
    const kh = readFileSync(join(sb.state, 'vms', vm, 'known_hosts'), 'utf8')
    const pub = readFileSync(join(sb.repo, 'machines', vm, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
    expect(kh.trim()).toBe(`${vm} ${pub}`)
  }, 600_000)

  it('refuses a guest whose host key differs from machines/NAME (no trust on first use)', async () => {
    const pubFile = join(sb.repo, 'machines', vm, 'ssh_host_ed25519_key.pub')
    const real = readFileSync(pubFile, 'utf8')
    const other = join(sb.dir, 'other_host_key')
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other])
    writeFileSync(pubFile, readFileSync(`${other}.pub`, 'utf8'))
    try {
      const r = await ssh('echo should-not-run')
      expect(r.code).not.toBe(0)
      expect(r.stdout).not.toContain('should-not-run')
      expect(r.stderr).toMatch(/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/)
    } finally {
      writeFileSync(pubFile, real)
    }
  })

  it('keeps /home and identity across `fleet upgrade` to a rebuilt image', async () => {
    expect((await ssh('echo kept-$(cat /etc/machine-id) > ~/survivor && sync')).code).toBe(0)
    const second = await build()
    expect(second.bootstrapCached).toBe(true)
    expect(second.digest).not.toBe(first.digest)
    console.log(`debian rebuild (cached bootstrap): ${JSON.stringify(second.seconds)}`)

    const u = await run(['upgrade', vm, '--json'])
    expect(u.code, u.stdout + u.stderr).toBe(0)
    expect(JSON.parse(u.stdout).vms[0]).toMatchObject({ baseFrom: first.digest, baseTo: second.digest, restarted: true })

    await ssh('true', 420)
    const id = readFileSync(join(sb.repo, 'machines', vm, 'machine-id'), 'utf8').trim()
    const r = await ssh('cat ~/survivor /etc/machine-id')
    expect(r.stdout.trim().split('\n')).toEqual([`kept-${id}`, id])
  }, 900_000)
})
