import { describe, expect, it } from 'vitest'
import { findFirmware } from '../../src/firmware.js'
import { resolveVirtType } from '../../src/virt-type.js'

describe('firmware', () => {
  it('honours OVMF_CODE and OVMF_VARS', () => {
    expect(findFirmware('x86_64', { OVMF_CODE: '/c.fd', OVMF_VARS: '/v.fd' })).toEqual({ code: '/c.fd', vars: '/v.fd' })
  })
  it('needs both overrides', () => {
    expect(() => findFirmware('x86_64', { OVMF_CODE: '/c.fd' })).toThrow(/both OVMF_CODE and OVMF_VARS/)
  })
  it('detects Fedora and NixOS paths, never a Secure Boot build', () => {
    const fedora = new Set(['/usr/share/edk2/ovmf/OVMF_CODE.fd', '/usr/share/edk2/ovmf/OVMF_VARS.fd'])
    expect(findFirmware('x86_64', {}, (p) => fedora.has(p)).code).toBe('/usr/share/edk2/ovmf/OVMF_CODE.fd')
    const nix = new Set(['/run/libvirt/nix-ovmf/OVMF_CODE.fd', '/run/libvirt/nix-ovmf/OVMF_VARS.fd'])
    expect(findFirmware('x86_64', {}, (p) => nix.has(p)).vars).toBe('/run/libvirt/nix-ovmf/OVMF_VARS.fd')
    const secure = new Set(['/usr/share/OVMF/OVMF_CODE_4M.secboot.fd', '/usr/share/OVMF/OVMF_VARS_4M.ms.fd'])
    expect(() => findFirmware('x86_64', {}, (p) => secure.has(p))).toThrow(/no UEFI firmware/)
  })
})

describe('virt type', () => {
  it('takes the flag, then FLEET_VIRT_TYPE', async () => {
    expect(await resolveVirtType('qemu', '/nonexistent', { FLEET_VIRT_TYPE: 'kvm' })).toBe('qemu')
    expect(await resolveVirtType(undefined, '/nonexistent', { FLEET_VIRT_TYPE: 'qemu' })).toBe('qemu')
    await expect(resolveVirtType(undefined, '/nonexistent', { FLEET_VIRT_TYPE: 'xen' })).rejects.toThrow(/FLEET_VIRT_TYPE "xen"/)
  })
})
