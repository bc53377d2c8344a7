// `fleet ssh` to a VM on a remote libvirt host whose SSH port only that host reaches: a real login
// (the test image's dropbear, serving the VM's identity host key) through the host, the host key
// verified against machines/NAME, and the host's sshd shows the connection was forwarded there.
import { execa } from 'execa'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fleet, sandbox } from '../helpers/fleet.js'
import { buildTestImage } from '../helpers/guest.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { startRemoteHost, type RemoteHost } from '../helpers/remote-host.js'

const sb = sandbox()
const vm = sb.name('sshfar')
let host: RemoteHost
const machineFile = (f: string) => join(sb.repo, 'machines', vm, f)

describe.skipIf(libvirtMissing)('fleet ssh to a VM on a remote host (through the host)', () => {
  beforeAll(async () => {
    host = await startRemoteHost(join(sb.dir, 'remote'), { logLevel: 'DEBUG1' })
    await buildTestImage(join(sb.dir, 'ssh.qcow2'), { version: 's1', ssh: true })
    const imp = await fleet(sb, ['image', 'import', join(sb.dir, 'ssh.qcow2'), '--name', 'base'])
    expect(imp.code, imp.stderr).toBe(0)
    const r = await fleet(sb, ['create-vm', vm, '--libvirt-host', host.uri, '--network', 'user', '--memory', '256M', '--var-size', '64M', '--yes', '--start'], { timeoutMs: 300_000 })
    expect(r.code, r.stderr).toBe(0)
  }, 400_000)
  afterAll(async () => {
    if (host) {
      await fleet(sb, ['destroy-vm', vm, '--delete-data', '--yes', '--adopt', '--timeout', '10'], { timeoutMs: 120_000 })
      const vols = (await host.virsh(['vol-list', '--pool', 'fleet'])).stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '')
      for (const v of vols.filter((x) => x.startsWith(vm))) await host.virsh(['vol-delete', '--pool', 'fleet', v])
      await host.stop()
    }
    sb.cleanup()
  })

  it('logs in with the identity host key verified, through the host; a wrong key in machines/ is refused', async () => {
    const port = JSON.parse(readFileSync(machineFile('machine.json'), 'utf8')).sshPort as number
    expect(port).toBeGreaterThan(0)
    const r = await fleet(sb, ['ssh', vm, '--wait', '240', '--', 'cat', '/var/identity/machine-id', '/var/identity/hostname'], { timeoutMs: 300_000 })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim().split('\n')).toEqual([readFileSync(machineFile('machine-id'), 'utf8').trim(), vm])
    // The host's sshd forwarded a connection to the VM's port there (the ProxyCommand, not a direct connect).
    expect(host.sshdLog()).toMatch(new RegExp(`direct-tcpip.*target 127\\.0\\.0\\.1 port ${port}\\b|originator .* target 127\\.0\\.0\\.1 port ${port}\\b`))

    // machines/NAME names another host key: the guest's key no longer matches, and ssh refuses.
    const pub = machineFile('ssh_host_ed25519_key.pub')
    const real = readFileSync(pub, 'utf8')
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'other', '-f', join(sb.dir, 'other')])
    writeFileSync(pub, readFileSync(join(sb.dir, 'other.pub')))
    try {
      const bad = await fleet(sb, ['ssh', vm, '--', 'true'], { timeoutMs: 120_000 })
      expect(bad.code).not.toBe(0)
      expect(bad.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|does not match/)
    } finally {
      writeFileSync(pub, real)
    }
  }, 400_000)

  it('build-libvirt-xml writes the XML it runs on there; define-vm redefines it there from machines/ (memory changed), volumes kept', async () => {
    const xmlFile = join(sb.repo, 'libvirt', `${vm}.xml`)
    const written = readFileSync(xmlFile, 'utf8') // by create-vm
    rmSync(xmlFile)
    const b = await fleet(sb, ['build-libvirt-xml', vm])
    expect(b.code, b.stderr).toBe(0)
    expect(readFileSync(xmlFile, 'utf8')).toBe(written)
    const disks = async () => [...(await host.virsh(['dumpxml', '--inactive', vm])).stdout.matchAll(/<source file='([^']+)'/g)].map((x) => x[1])
    const before = await disks()
    const mj = machineFile('machine.json')
    const json = readFileSync(mj, 'utf8')
    writeFileSync(mj, json.replace(/"memory": "256M"/, '"memory": "320M"'))
    try {
      const d = await fleet(sb, ['define-vm', vm])
      expect(d.code, d.stderr).toBe(0)
      // The persistent definition (a running VM takes it at its next start).
      expect((await host.virsh(['dumpxml', '--inactive', vm])).stdout).toMatch(/<memory unit='KiB'>327680<\/memory>/)
      expect(await disks()).toEqual(before)
      expect(readFileSync(xmlFile, 'utf8')).toMatch(/327680|320/)
    } finally {
      writeFileSync(mj, json)
      expect((await fleet(sb, ['define-vm', vm])).code).toBe(0)
    }
  }, 300_000)

  it('a domain of its name on the host that is not this fleet\'s: start, stop, destroy, upgrade, rollback refuse it (exit 2, nothing changed), plan says foreign; --adopt lets start through', async () => {
    expect((await fleet(sb, ['stop-vm', vm, '--force', '--timeout', '5'])).code).toBe(0)
    // The same domain, defined again without fleet's metadata (as by hand or another tool).
    const xml = (await host.virsh(['dumpxml', '--inactive', vm])).stdout.replace(/<metadata>[\s\S]*?<\/metadata>\s*/, '')
    expect(xml).not.toMatch(/fleet-vm/)
    writeFileSync(join(sb.dir, 'foreign.xml'), xml)
    expect((await host.virsh(['define', join(sb.dir, 'foreign.xml')])).code).toBe(0)
    const before = { xml: (await host.virsh(['dumpxml', '--inactive', vm])).stdout, vols: (await host.virsh(['vol-list', '--pool', 'fleet'])).stdout }
    for (const args of [['start-vm', vm], ['stop-vm', vm], ['destroy-vm', vm, '--yes'], ['upgrade', vm], ['rollback', vm]]) {
      const r = await fleet(sb, args, { timeoutMs: 120_000 })
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr, args.join(' ')).toMatch(new RegExp(`machine ${vm}: the libvirt domain ${vm} on qemu\\+ssh://\\S+ has no fleet metadata: it was defined outside fleet`))
    }
    expect((await host.virsh(['dumpxml', '--inactive', vm])).stdout).toBe(before.xml)
    expect((await host.virsh(['vol-list', '--pool', 'fleet'])).stdout).toBe(before.vols)
    expect((await host.virsh(['domstate', vm])).stdout.trim()).toBe('shut off')
    const plan = await fleet(sb, ['plan'])
    expect(plan.stdout).toMatch(new RegExp(`${vm}\\s+foreign`))
    const adopt = await fleet(sb, ['start-vm', vm, '--adopt'])
    expect(adopt.code, adopt.stderr).toBe(0)
    expect((await host.virsh(['domstate', vm])).stdout.trim()).toBe('running')
  }, 300_000)
})
