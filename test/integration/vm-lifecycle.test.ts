// create-vm, list, stop-vm, destroy-vm against the real libvirtd, qemu-img and guestfish.
import { execa } from 'execa'
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { blankImage, fleet, fleetJson, sandbox, virsh } from '../helpers/fleet.js'
import { readVarDisks } from '../helpers/var-disk.js'

const sb = sandbox()
const web = sb.name('web1')

describe.skipIf(libvirtMissing)('VM lifecycle on real libvirt', () => {
  beforeAll(async () => {
    await blankImage(join(sb.dir, 'base.qcow2'))
    const r = await fleet(sb, ['image', 'import', join(sb.dir, 'base.qcow2'), '--name', 'base'])
    expect(r.code, r.stderr).toBe(0)
  })
  afterAll(async () => {
    await virsh(['destroy', web])
    await virsh(['undefine', '--nvram', web])
    sb.cleanup()
  })

  it('creates disks, identity, valid XML and a defined domain', async () => {
    const t0 = performance.now()
    const r = await fleet(sb, ['create-vm', web, '--memory', '512M', '--vcpus', '1', '--var-size', '1G', '--network', 'none', '--yes', '--json'])
    console.log(`create-vm took ${Math.round(performance.now() - t0)} ms`)
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as { timings: Record<string, number>; defined: boolean }
    console.log('create-vm timings (ms):', JSON.stringify(out.timings))
    expect(out.defined).toBe(true)
    const xmlFile = join(sb.repo, 'libvirt', `${web}.xml`)
    await execa('virt-xml-validate', [xmlFile, 'domain'])
    const live = (await virsh(['dumpxml', web])).stdout
    writeFileSync(join(sb.dir, 'live.xml'), live)
    await execa('virt-xml-validate', [join(sb.dir, 'live.xml'), 'domain'])
    expect(live).toContain('<readonly/>')
    const boot = join(sb.state, 'vms', web, 'boot.qcow2')
    const info = JSON.parse((await execa('qemu-img', ['info', '-U', '--output=json', boot])).stdout) as { 'backing-filename': string }
    expect(info['backing-filename']).toMatch(/images\/[0-9a-f]{64}\.qcow2$/)
    expect(statSync(info['backing-filename']).mode & 0o777).toBe(0o444)
  })

  it('wrote the identity files onto the /var disk with their modes', async () => {
    const [disk] = await readVarDisks([join(sb.state, 'vms', web, 'var.qcow2')])
    expect(disk!.label).toBe('var')
    const mdir = join(sb.repo, 'machines', web)
    const machineId = readFileSync(join(mdir, 'machine-id'), 'utf8')
    expect(machineId).toMatch(/^[0-9a-f]{32}\n$/)
    expect(disk!.files['/identity/machine-id']).toMatchObject({ mode: '644', uid: 0, content: machineId })
    expect(disk!.files['/identity/hostname']!.content).toBe(`${web}\n`)
    expect(disk!.files['/identity/ssh_host_ed25519_key']).toMatchObject({ mode: '600', content: readFileSync(join(mdir, 'ssh_host_ed25519_key'), 'utf8') })
    expect(statSync(join(mdir, 'ssh_host_ed25519_key')).mode & 0o777).toBe(0o600)
    for (const f of ['resolv.conf', 'hosts', 'tcp_ports', 'udp_ports', 'admin_authorized_keys', 'user_authorized_keys', 'ssh_host_ed25519_key.pub']) {
      expect(disk!.files[`/identity/${f}`]?.content, f).toBe(readFileSync(join(mdir, f), 'utf8'))
    }
    expect(disk!.dirs).toEqual(expect.arrayContaining(['/home', '/log/journal', '/identity']))
  }, 180_000)

  it('lists the VM with state, base digest, memory and vcpus', async () => {
    const { vms } = await fleetJson<{ vms: { name: string; state: string; baseDigest: string; memory: string; vcpus: number }[] }>(sb, ['list'])
    expect(vms).toEqual([expect.objectContaining({ name: web, state: 'shut off', memory: '512M', vcpus: 1, baseDigest: expect.stringMatching(/^[0-9a-f]{64}$/) })])
  })

  it('refuses a name that exists, changing nothing', async () => {
    const before = readFileSync(join(sb.repo, 'machines', web, 'machine.json'), 'utf8')
    const r = await fleet(sb, ['create-vm', web, '--yes'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`machine ${web}: a libvirt domain named ${web} already exists`)
    expect(readFileSync(join(sb.repo, 'machines', web, 'machine.json'), 'utf8')).toBe(before)
  })

  it('starts, stops with --force after the timeout (the blank disk never answers ACPI), and destroys keeping /var', async () => {
    expect((await fleet(sb, ['start-vm', web])).code).toBe(0)
    expect((await virsh(['domstate', web])).stdout.trim()).toBe('running')
    const refused = await fleet(sb, ['stop-vm', web, '--timeout', '2'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/still running 2s after the ACPI shutdown request/)
    const stop = await fleetJson<{ after: string; forced: boolean }>(sb, ['stop-vm', web, '--timeout', '2', '--force'])
    expect(stop).toMatchObject({ after: 'shut off', forced: true })
    const dry = await fleetJson<{ removed: string[] }>(sb, ['destroy-vm', web, '--dry-run'])
    expect(dry.removed.length).toBeGreaterThan(0)
    expect((await virsh(['domstate', web])).code).toBe(0)
    const r = await fleet(sb, ['destroy-vm', web])
    expect(r.code, r.stderr).toBe(0)
    expect((await virsh(['domstate', web])).code).not.toBe(0)
    const vm = join(sb.state, 'vms', web)
    expect(existsSync(join(vm, 'boot.qcow2'))).toBe(false)
    expect(existsSync(join(vm, 'OVMF_VARS.fd'))).toBe(false)
    expect(existsSync(join(vm, 'var.qcow2'))).toBe(true)
    expect(existsSync(join(sb.repo, 'machines', web, 'machine.json'))).toBe(true)
  })

  it('--delete-data needs --yes without a terminal, then removes /var too', async () => {
    const r = await fleet(sb, ['destroy-vm', web, '--delete-data'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('pass --yes')
    expect(existsSync(join(sb.state, 'vms', web, 'var.qcow2'))).toBe(true)
    expect((await fleet(sb, ['destroy-vm', web, '--delete-data', '--yes'])).code).toBe(0)
    expect(existsSync(join(sb.state, 'vms', web))).toBe(false)
  })

  it('undoes everything when a step fails half way, and says what it removed', async () => {
    const name = sb.name('broken')
    // A qemu-img that works except for `convert`, so the /var disk step fails after the overlay exists.
    const fake = join(sb.dir, 'qemu-img-failing-convert')
    writeFileSync(fake, '#!/bin/sh\n[ "$1" = convert ] && { echo "simulated failure" >&2; exit 1; }\nexec qemu-img "$@"\n')
    chmodSync(fake, 0o755)
    const r = await fleet({ env: { ...sb.env, QEMU_IMG: fake } }, ['create-vm', name, '--yes'])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain('simulated failure')
    expect(r.stderr).toMatch(/Undone after the failure: removed .*boot overlay/)
    expect(existsSync(join(sb.repo, 'machines', name))).toBe(false)
    expect(existsSync(join(sb.state, 'vms', name))).toBe(false)
    expect((await virsh(['domstate', name])).code).not.toBe(0)
  })
})
