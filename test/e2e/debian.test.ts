// The main job on real components: build the Debian base image (bootstrap cached in
// FLEET_CACHE_DIR across runs), create a VM on user networking with an SSH forward, boot it
// under TCG and check the guest contract over `fleet ssh`; then rebuild the image, upgrade,
// and find /home data and identity intact. The first build boots the image in a throwaway
// domain before promoting it (its self-check line must match); a build without its identity
// step (test-only FLEET_TEST_BREAK_CONTRACT) is refused and the channel stays; the failure rules of
// docs/guest-contract.md are checked where they can be: a bad port line is skipped and
// reported, and a guest without its /var disk prints FLEET-FATAL and powers off.
import { execa } from 'execa'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { fleet, sandbox, virsh, type Run } from '../helpers/fleet.js'
import { consoleLog, tail } from '../helpers/guest.js'
import { attachIdentityDisk, isoFromSecret } from '../helpers/identity-iso.js'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'

const sb = sandbox()
const vm = sb.name('deb')
const noVar = sb.name('deb-novar')
// No --admin-key and a home without ~/.ssh keys: create-vm makes fleet's own login pair, `fleet ssh` uses it.
const home = join(sb.dir, 'home')
const fleetKey = join(sb.state, 'ssh', 'id_ed25519')
const cache = process.env.FLEET_CACHE_DIR ?? '/var/tmp/fleet-test-cache'
const env = { ...sb.env, FLEET_CACHE_DIR: cache, HOME: home, SUDO_USER: '' }
const run = (args: string[], timeoutMs = 600_000) => fleet({ env }, args, { timeoutMs })

interface Built { digest: string; seconds: Record<string, number>; bootstrapCached: boolean; size: number; virtualSize: number; verify?: { line: string; seconds: number; virtType: string } }
// The rebuild skips the boot verification: the first build already proved this builder's image.
const build = async (verify = true): Promise<Built> => {
  const r = await run(['build', '--builder', 'debian', '--compress', ...(verify ? ['--verify-timeout', '600'] : ['--no-verify']), '--json'], 1_200_000)
  expect(r.code, r.stderr.slice(-3000) + r.stdout).toBe(0)
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
    for (const d of [vm, noVar]) {
      await virsh(['destroy', d])
      await virsh(['undefine', '--nvram', d])
    }
    sb.cleanup()
  })

  it('was promoted only after its boot in a throwaway domain printed a matching self-check line', () => {
    console.log(`debian verification: ${first.verify?.seconds} s: ${first.verify?.line}`)
    expect(first.verify?.line).toMatch(/^FLEET-SELF-CHECK machine-id=[0-9a-f]{32} root=ro var=var hostkey=AAAAC3NzaC1lZDI1NTE5\S+$/)
    expect(Object.keys(first.seconds)).toEqual(['bootstrap', 'customize', 'assemble', 'convert', 'verify', 'store', 'total'])
  })

  it('refuses an image built without its identity step (FLEET_TEST_BREAK_CONTRACT=identity): channel and store unchanged, console log kept', async () => {
    const channels = () => JSON.parse(readFileSync(join(sb.state, 'images', 'channels.json'), 'utf8')) as Record<string, { digest: string }>
    const storeFiles = () => readdirSync(join(sb.state, 'images')).filter((f) => f.endsWith('.qcow2')).sort()
    expect(channels().base!.digest).toBe(first.digest)
    const files = storeFiles()
    const t0 = performance.now()
    const r = await fleet({ env: { ...env, FLEET_TEST_BREAK_CONTRACT: 'identity' } }, ['build', '--builder', 'debian', '--verify-timeout', '600'], { timeoutMs: 1_200_000 })
    console.log(`debian broken-contract build + verification: ${((performance.now() - t0) / 1000).toFixed(1)} s, exit ${r.code}: ${r.stderr.split('\n').filter((l) => l.includes('guest contract')).join(' ')}`)
    expect(r.code, r.stderr.slice(-3000)).toBe(2)
    // The image's empty placeholders are all systemd and sshd get: not the throwaway identity.
    expect(r.stderr).toMatch(/did not prove the guest contract, so channel base was not moved: machine-id is \S+, not the identity's [0-9a-f]{32}/)
    expect(channels().base!.digest).toBe(first.digest)
    expect(storeFiles()).toEqual(files)
    const kept = /console log in (\S+\.log)\./.exec(r.stderr)?.[1]
    expect(kept && existsSync(kept), r.stderr.slice(-3000)).toBe(true)
    expect(kept!.startsWith(join(sb.state, 'verify-logs'))).toBe(true)
    expect(readFileSync(kept!, 'utf8')).toContain('FLEET-SELF-CHECK machine-id=')
  }, 1_300_000)

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
    // Every boot prints the contract's self-check line; here with the machine's own identity.
    expect(consoleLog(sb, vm)).toContain(`FLEET-SELF-CHECK machine-id=${id} root=ro var=var hostkey=${pub.split(' ')[1]}`)
  }, 600_000)

  it('skips and reports a port line that is not a port, and opens the others (failure rules)', async () => {
    const r = await ssh(`sudo sh -c 'cp /var/identity/tcp_ports /run/tcp_ports.kept && printf "22\\n# web\\n8080 # web\\nbogus\\n99999\\n" > /var/identity/tcp_ports && /usr/lib/fleet/firewall 2>&1; nft list chain inet fleet input | grep "tcp dport"; cp /run/tcp_ports.kept /var/identity/tcp_ports && /usr/lib/fleet/firewall >/dev/null 2>&1'`)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("fleet-firewall: ignoring 'bogus' in /var/identity/tcp_ports (not a port 1-65535)")
    expect(r.stdout).toContain("fleet-firewall: ignoring '99999' in /var/identity/tcp_ports (not a port 1-65535)")
    expect(r.stdout).toMatch(/tcp dport \{ 22, 8080 \} accept/)
  })

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
    const second = await build(false)
    expect(second.verify).toBeUndefined()
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

  it('takes a changed identity from an identity disk (KubeVirt\'s Secret volume) at boot: /etc/machine-id, key mode 0600', async () => {
    // The identity moves on in the cluster: a new machine-id, exported, delivered only by the disk.
    const idNew = randomUUID().replace(/-/g, '')
    writeFileSync(join(sb.repo, 'machines', vm, 'machine-id'), `${idNew}\n`)
    const out = join(sb.dir, 'kubevirt')
    const e = await run(['export', 'kubevirt', vm, '--registry', 'localhost:5000/fleet', '--out', out])
    expect(e.code, e.stderr).toBe(0)
    const iso = join(sb.dir, 'identity.iso')
    await isoFromSecret(join(out, `${vm}.json`), iso)
    expect((await run(['stop-vm', vm])).code).toBe(0)
    const a = await virsh(attachIdentityDisk(vm, iso))
    expect(a.code, a.stderr).toBe(0)
    expect((await virsh(['start', vm])).code).toBe(0)
    await ssh('true', 420)
    const r = await ssh('cat /etc/machine-id; stat -c %a /var/identity/ssh_host_ed25519_key; ls /var/identity.new /var/identity.old 2>&1 | wc -l')
    expect(r.stdout.trim().split('\n').slice(0, 2)).toEqual([idNew, '600'])
    expect(consoleLog(sb, vm)).toMatch(/fleet-identity: identity disk \/dev\/vd\w+ copied into \/var\/identity/)
    await run(['stop-vm', vm])
    expect((await virsh(['detach-disk', vm, 'vdc', '--config'])).code).toBe(0)
  }, 900_000)

  it('without its /var disk the guest prints one FLEET-FATAL line and powers off (failure rules)', async () => {
    expect((await run(['stop-vm', vm, '--force'])).code).toBe(0)
    // The VM's own definition without vdb, under another name, its own NVRAM and console log.
    let xml = (await virsh(['dumpxml', '--inactive', vm])).stdout
    xml = xml.replace(/<disk[^>]*>(?:(?!<\/disk>)[\s\S])*<target dev='vdb'[\s\S]*?<\/disk>/, '')
    expect(xml).not.toContain("dev='vdb'")
    const nvram = join(sb.dir, 'novar_VARS.fd')
    const log = join(sb.dir, 'novar-console.log')
    copyFileSync(/<nvram[^>]*>([^<]+)<\/nvram>/.exec(xml)![1]!, nvram)
    xml = xml.replace(/<name>[^<]+<\/name>/, `<name>${noVar}</name>`).replace(/<uuid>[^<]+<\/uuid>/, `<uuid>${randomUUID()}</uuid>`)
      .replace(/(<nvram[^>]*>)[^<]+(<\/nvram>)/, `$1${nvram}$2`).replace(/<log file='[^']+'/g, `<log file='${log}'`)
      .replace(/<interface[\s\S]*?<\/interface>/g, '').replace(/<qemu:commandline>[\s\S]*?<\/qemu:commandline>/, '')
    const file = join(sb.dir, 'novar.xml')
    writeFileSync(file, xml)
    expect((await virsh(['define', file])).code).toBe(0)
    const t0 = performance.now()
    expect((await virsh(['start', noVar])).code).toBe(0)
    const deadline = Date.now() + 300_000
    while ((await virsh(['domstate', noVar])).stdout.trim() !== 'shut off' && Date.now() < deadline) await sleep(1000)
    const text = readFileSync(log, 'utf8').replace(/\r/g, '')
    console.log(`no /var: off after ${((performance.now() - t0) / 1000).toFixed(1)} s; ${/^FLEET-FATAL .*$/m.exec(text)?.[0]}`)
    expect((await virsh(['domstate', noVar])).stdout.trim(), tail(text)).toBe('shut off')
    expect(text.match(/^FLEET-FATAL .*$/gm)).toEqual(['FLEET-FATAL no filesystem labelled var after 30 s (the /var disk, vdb)'])
    expect(text).not.toContain('FLEET-SELF-CHECK')
  }, 400_000)
})
