// OVMF/AAVMF firmware: OVMF_CODE / OVMF_VARS overrides, else the first pair found in the
// paths Debian, Fedora, Arch and NixOS install. Never a Secure Boot build: an unsigned
// systemd-boot hangs silently under one.
import { existsSync } from 'node:fs'
import { UserError } from './errors.js'
import type { Arch } from './machines/model.js'
import type { Env } from './util/env.js'

export interface Firmware {
  code: string
  vars: string
}

export const FIRMWARE_CANDIDATES: Record<Arch, Firmware[]> = {
  x86_64: [
    { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' }, // Debian/Ubuntu
    { code: '/usr/share/OVMF/OVMF_CODE.fd', vars: '/usr/share/OVMF/OVMF_VARS.fd' }, // older Debian/Ubuntu
    { code: '/usr/share/edk2/ovmf/OVMF_CODE.fd', vars: '/usr/share/edk2/ovmf/OVMF_VARS.fd' }, // Fedora
    { code: '/usr/share/edk2/x64/OVMF_CODE.4m.fd', vars: '/usr/share/edk2/x64/OVMF_VARS.4m.fd' }, // Arch
    { code: '/usr/share/edk2-ovmf/x64/OVMF_CODE.fd', vars: '/usr/share/edk2-ovmf/x64/OVMF_VARS.fd' }, // older Arch
    { code: '/run/libvirt/nix-ovmf/OVMF_CODE.fd', vars: '/run/libvirt/nix-ovmf/OVMF_VARS.fd' }, // NixOS
  ],
  aarch64: [
    { code: '/usr/share/AAVMF/AAVMF_CODE.fd', vars: '/usr/share/AAVMF/AAVMF_VARS.fd' }, // Debian/Ubuntu
    { code: '/usr/share/edk2/aarch64/QEMU_EFI-pflash.raw', vars: '/usr/share/edk2/aarch64/vars-template-pflash.raw' }, // Fedora
    { code: '/usr/share/edk2/aarch64/QEMU_CODE.fd', vars: '/usr/share/edk2/aarch64/QEMU_VARS.fd' }, // Arch
    { code: '/run/libvirt/nix-ovmf/AAVMF_CODE.fd', vars: '/run/libvirt/nix-ovmf/AAVMF_VARS.fd' }, // NixOS
  ],
}

export function findFirmware(arch: Arch, env: Env = process.env, exists: (p: string) => boolean = existsSync): Firmware {
  if (env.OVMF_CODE || env.OVMF_VARS) {
    if (!env.OVMF_CODE || !env.OVMF_VARS) throw new UserError('set both OVMF_CODE and OVMF_VARS, or neither')
    return { code: env.OVMF_CODE, vars: env.OVMF_VARS }
  }
  const found = FIRMWARE_CANDIDATES[arch].find((f) => exists(f.code) && exists(f.vars))
  if (!found) {
    throw new UserError(
      `no UEFI firmware for ${arch} found (looked for ${FIRMWARE_CANDIDATES[arch].map((f) => f.code).join(', ')})`,
      arch === 'x86_64' ? 'Install it (Debian: apt-get install ovmf) or set OVMF_CODE and OVMF_VARS.' : 'Install it (Debian: apt-get install qemu-efi-aarch64) or set OVMF_CODE and OVMF_VARS.',
    )
  }
  return found
}
