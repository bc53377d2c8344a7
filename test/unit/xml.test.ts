import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Machine } from '../../src/machines/model.js'
import { statePaths, vmFiles } from '../../src/repo.js'
import { buildDomain } from '../../src/xml/build-domain.js'
import { FLEET_NS, parseDomain, serializeDomain } from '../../src/xml/serialize.js'

const FLEET_ID = '0b7c4d2e-8f1a-4c3b-9d6e-5a4f3e2d1c0b'
const paths = statePaths('/srv/fleet', '/var/lib/fleet')
const machine = (over: Partial<Machine> = {}): Machine => ({
  name: 'web1', dir: '/srv/fleet/machines/web1', memory: '512M', memoryBytes: 512 * 1024 ** 2, vcpus: 2, varSize: '1G', varSizeBytes: 1024 ** 3,
  network: 'none', mac: '52:54:00:aa:bb:cc', uuid: '5b971591-46ab-4716-a6a6-04212898b39e', arch: 'x86_64', base: 'base', ...over,
})
const ctx = (virtType: 'kvm' | 'qemu' = 'qemu', userNet: 'passt' | 'slirp' = 'passt') => ({
  virtType, onReboot: 'restart' as const, userNet, firmware: { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
  files: vmFiles(paths, 'web1'), baseDigest: 'ab'.repeat(32), fleetId: FLEET_ID,
})

const dir = mkdtempSync(join(tmpdir(), 'fleet-xml-'))
function validate(xml: string, name: string): void {
  const f = join(dir, `${name}.xml`)
  writeFileSync(f, xml)
  // Throws (failing the test) if libvirt's schema rejects the document.
  execFileSync('virt-xml-validate', [f, 'domain'], { stdio: 'pipe' })
}

describe('domain XML', () => {
  it.each([
    ['no network', machine(), 'qemu'],
    ['libvirt network', machine({ network: 'default' }), 'kvm'],
    ['user network with SSH forward (passt)', machine({ network: 'user', sshPort: 2222 }), 'qemu', 'passt'],
    ['user network with SSH forward (slirp)', machine({ network: 'user', sshPort: 2222 }), 'qemu', 'slirp'],
    ['aarch64', machine({ arch: 'aarch64' }), 'qemu'],
  ] as const)('%s passes virt-xml-validate', (label, m, vt, net = 'passt') => {
    validate(serializeDomain(buildDomain(m, ctx(vt, net))), label.replace(/\W+/g, '-'))
  })

  it('has q35, OVMF without Secure Boot, per-VM NVRAM, read-only boot disk, read-write /var and a logged serial console', () => {
    const xml = serializeDomain(buildDomain(machine(), ctx()))
    expect(xml).toContain('<domain type="qemu">')
    expect(xml).toContain('machine="q35"')
    expect(xml).toMatch(/<loader readonly="yes" type="pflash" secure="no">\/usr\/share\/OVMF\/OVMF_CODE_4M.fd<\/loader>/)
    expect(xml).toContain('<nvram template="/usr/share/OVMF/OVMF_VARS_4M.fd">/var/lib/fleet/vms/web1/OVMF_VARS.fd</nvram>')
    const d = parseDomain(xml)
    expect(d.disks).toEqual([
      { target: 'vda', source: '/var/lib/fleet/vms/web1/boot.qcow2', readonly: true },
      { target: 'vdb', source: '/var/lib/fleet/vms/web1/var.qcow2', readonly: false },
    ])
    expect(d.consoleLog).toBe('/var/lib/fleet/vms/web1/console.log')
    expect(d.uuid).toBe('5b971591-46ab-4716-a6a6-04212898b39e')
    expect(d.base).toEqual({ channel: 'base', digest: 'ab'.repeat(32) })
    expect(xml).toContain('<on_crash>destroy</on_crash>')
  })

  it('keeps the MAC and forwards SSH on loopback only', () => {
    const d = parseDomain(serializeDomain(buildDomain(machine({ network: 'user', sshPort: 2222 }), ctx())))
    expect(d.macs).toEqual(['52:54:00:aa:bb:cc'])
    const xml = serializeDomain(buildDomain(machine({ network: 'user', sshPort: 2222 }), ctx()))
    expect(xml).toMatch(/<portForward proto="tcp" address="127.0.0.1">\s*<range start="2222" to="22"\/>/)
  })

  it('slirp: hostfwd on loopback through <qemu:commandline>, NIC on a fixed slot, MAC kept', () => {
    const xml = serializeDomain(buildDomain(machine({ network: 'user', sshPort: 2222 }), ctx('qemu', 'slirp')))
    expect(xml).toContain('xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"')
    expect(xml).not.toContain('<interface')
    expect(xml).toContain('<qemu:arg value="user,id=fleetnet0,hostfwd=tcp:127.0.0.1:2222-:22"/>')
    expect(xml).toContain('<qemu:arg value="virtio-net-pci,netdev=fleetnet0,mac=52:54:00:aa:bb:cc,bus=pcie.0,addr=0x10"/>')
    expect(parseDomain(xml).macs).toEqual(['52:54:00:aa:bb:cc'])
  })

  it('carries the fleet id in the fleet metadata and reads it back', () => {
    const xml = serializeDomain(buildDomain(machine(), ctx()))
    expect(xml).toContain(`<fleet:machine xmlns:fleet="${FLEET_NS}" name="web1" fleet-id="${FLEET_ID}">`)
    expect(parseDomain(xml).fleet).toEqual({ machine: 'web1', fleetId: FLEET_ID })
  })

  it('tells fleet metadata without an id (older fleet) and no fleet metadata apart, whatever the prefix', () => {
    const legacy = `<domain type="qemu"><name>web1</name><metadata><f:machine xmlns:f="${FLEET_NS}" name="web1"><f:base channel="base" digest="cd"/></f:machine></metadata></domain>`
    expect(parseDomain(legacy).fleet).toEqual({ machine: 'web1' })
    expect(parseDomain(legacy).base).toEqual({ channel: 'base', digest: 'cd' })
    const other = `<domain type="qemu"><name>web1</name><metadata><fleet:machine xmlns:fleet="https://example.org/not-fleet" name="web1" fleet-id="${FLEET_ID}"/></metadata></domain>`
    expect(parseDomain(other).fleet).toBeUndefined()
    expect(parseDomain('<domain type="qemu"><name>web1</name></domain>').fleet).toBeUndefined()
  })

  it('escapes values instead of templating them', () => {
    const xml = serializeDomain(buildDomain(machine({ network: 'a&b' }), ctx()))
    expect(xml).toContain('network="a&amp;b"')
  })
})
