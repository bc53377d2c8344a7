// The domain model read back from XML (plan's drift detection): what fleet writes parses to the
// model it was built from, libvirt's normalised form (aliases expanded, defaults and addresses
// added) is no drift, and each real difference is named and classed live or restart.
import { describe, expect, it } from 'vitest'
import type { Machine } from '../../src/machines/model.js'
import { statePaths, vmFiles } from '../../src/repo.js'
import { buildDomain } from '../../src/xml/build-domain.js'
import { diffDomain } from '../../src/xml/diff-domain.js'
import { machineFamily, parseDomainModel } from '../../src/xml/parse-domain.js'
import { serializeDomain } from '../../src/xml/serialize.js'

const paths = statePaths('/srv/fleet', '/var/lib/fleet')
const machine = (over: Partial<Machine> = {}): Machine => ({
  name: 'web1' as Machine['name'], dir: '/srv/fleet/machines/web1', memory: '512M', memoryBytes: 512 * 1024 ** 2, vcpus: 2, varSize: '1G', varSizeBytes: 1024 ** 3,
  network: 'none', mac: '52:54:00:aa:bb:cc', uuid: '5b971591-46ab-4716-a6a6-04212898b39e', arch: 'x86_64', base: 'base', ...over,
})
const ctx = (virtType: 'kvm' | 'qemu' = 'qemu', userNet: 'passt' | 'slirp' = 'passt') => ({
  virtType, onReboot: 'destroy' as const, userNet, firmware: { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
  files: vmFiles(paths, 'web1' as Machine['name']), baseDigest: 'ab'.repeat(32), fleetId: '0b7c4d2e-8f1a-4c3b-9d6e-5a4f3e2d1c0b',
})

/** What libvirt 9 gives back for a fleet domain (dumpxml --inactive), trimmed of controllers. */
const LIBVIRT_XML = `<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>web1</name>
  <uuid>5b971591-46ab-4716-a6a6-04212898b39e</uuid>
  <metadata>
    <fleet:machine xmlns:fleet="https://github.com/fleet-vm/fleet/xmlns/1" name="web1" fleet-id="0b7c4d2e-8f1a-4c3b-9d6e-5a4f3e2d1c0b">
      <fleet:base channel="base" digest="${'ab'.repeat(32)}"/>
    </fleet:machine>
  </metadata>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>524288</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' secure='no' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/fleet/vms/web1/OVMF_VARS.fd</nvram>
    <boot dev='hd'/>
  </os>
  <features><acpi/><apic/></features>
  <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/fleet/vms/web1/boot.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <readonly/>
      <address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/fleet/vms/web1/var.qcow2'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <controller type='pci' index='0' model='pcie-root'/>
    <serial type='pty'>
      <log file='/var/lib/fleet/vms/web1/console.log' append='on'/>
      <target type='isa-serial' port='0'><model name='isa-serial'/></target>
    </serial>
    <console type='pty'><log file='/var/lib/fleet/vms/web1/console.log' append='on'/><target type='serial' port='0'/></console>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
      <address type='virtio-serial' controller='0' bus='0' port='1'/>
    </channel>
    <memballoon model='virtio'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/>
    <qemu:arg value='user,id=fleetnet0,hostfwd=tcp:127.0.0.1:2200-:22'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='virtio-net-pci,netdev=fleetnet0,mac=52:54:00:aa:bb:cc,bus=pcie.0,addr=0x10'/>
  </qemu:commandline>
</domain>`

describe('domain model read back from XML', () => {
  it.each([
    ['no network', machine(), 'qemu', 'passt'],
    ['libvirt network, KVM', machine({ network: 'default' }), 'kvm', 'passt'],
    ['user network (passt)', machine({ network: 'user', sshPort: 2222 }), 'qemu', 'passt'],
    ['user network (slirp)', machine({ network: 'user', sshPort: 2222 }), 'qemu', 'slirp'],
    ['aarch64', machine({ arch: 'aarch64' }), 'qemu', 'passt'],
  ] as const)('%s: what fleet writes parses back to the same model', (_, m, vt, net) => {
    const d = buildDomain(m, ctx(vt, net))
    expect(parseDomainModel(serializeDomain(d))).toEqual(JSON.parse(JSON.stringify(d)))
    expect(diffDomain(d, parseDomainModel(serializeDomain(d)))).toEqual([])
  })

  it("libvirt's normalised XML is no drift", () => {
    const want = buildDomain(machine({ network: 'user', sshPort: 2200 }), ctx('qemu', 'slirp'))
    expect(diffDomain(want, parseDomainModel(LIBVIRT_XML))).toEqual([])
    expect(machineFamily('pc-q35-7.2')).toBe('q35')
    expect(machineFamily('virt-8.0')).toBe('virt')
  })

  it('names each difference and whether libvirt applies it live or it needs a restart', () => {
    const want = buildDomain(machine({ network: 'user', sshPort: 2201, memoryBytes: 1024 ** 3, vcpus: 3 }), { ...ctx('qemu', 'slirp'), onReboot: 'restart', baseDigest: 'cd'.repeat(32) })
    expect(diffDomain(want, parseDomainModel(LIBVIRT_XML))).toEqual([
      { field: 'metadata.base.digest', from: 'ab'.repeat(32), to: 'cd'.repeat(32), apply: 'live' },
      { field: 'memoryKiB', from: '524288', to: '1048576', apply: 'restart' },
      { field: 'vcpu', from: '2', to: '3', apply: 'restart' },
      { field: 'onReboot', from: 'destroy', to: 'restart', apply: 'live' },
      { field: 'devices.interfaces[0].portForwards[0].hostPort', from: '2200', to: '2201', apply: 'restart' },
    ])
  })

  it('a disk or interface more or less is a difference of the list, needing a restart', () => {
    const want = buildDomain(machine({ network: 'default' }), ctx())
    const have = parseDomainModel(serializeDomain(buildDomain(machine(), ctx())))
    const changes = diffDomain(want, have)
    expect(changes).toContainEqual({ field: 'devices.interfaces.length', from: '0', to: '1', apply: 'restart' })
    expect(changes).toContainEqual({ field: 'devices.interfaces[0].network', from: '(none)', to: 'default', apply: 'restart' })
  })
})
