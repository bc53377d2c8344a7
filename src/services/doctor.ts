// fleet doctor: is this host ready? One check per tool and service, each with a fix.
import { which } from '../adapters/exec.js'
import { nixCommand } from '../adapters/nix.js'
import * as libvirt from '../adapters/libvirt.js'
import { runGuestfish } from '../adapters/guestfish.js'
import { unavailable as e2fsUnavailable } from '../adapters/e2fs.js'
import { probeAccel } from '../adapters/qemu-system.js'
import { findFirmware } from '../firmware.js'
import { libvirtUri, words } from '../util/env.js'

export interface Check {
  name: string
  ok: boolean
  detail: string
  fix?: string
}

const TOOLS: [string, string, string][] = [
  ['qemu-img', process.env.QEMU_IMG || 'qemu-img', 'apt-get install qemu-utils'],
  ['qemu-system-x86_64', 'qemu-system-x86_64', 'apt-get install qemu-system-x86'],
  ['virsh', process.env.VIRSH || 'virsh', 'apt-get install libvirt-clients'],
  ['guestfish', process.env.GUESTFISH || 'guestfish', 'apt-get install libguestfs-tools'],
  ['mkfs.ext4', 'mkfs.ext4', 'apt-get install e2fsprogs'],
  ['ssh-keygen', 'ssh-keygen', 'apt-get install openssh-client'],
  ['ssh', process.env.FLEET_SSH || 'ssh', 'apt-get install openssh-client'],
  ['age', 'age', 'apt-get install age (machine secrets: host keys encrypted in git)'],
]

/** `fleet build` needs one working builder: nix, or the Debian builder's tools. */
async function builderCheck(): Promise<Check> {
  const nix = await which(nixCommand()[0]!)
  const debianTools = ['mmdebstrap', 'sfdisk', 'mkfs.fat', 'mcopy', 'mmd', 'chroot']
  const missing = (await Promise.all(debianTools.map(async (t) => ((await which(t)) ? undefined : t)))).filter(Boolean)
  const detail = [nix ? `nix: ${nix}` : 'nix: not installed', missing.length ? `debian: missing ${missing.join(', ')}` : 'debian: ready'].join('; ')
  return nix || !missing.length
    ? { name: 'image builder', ok: true, detail }
    : { name: 'image builder', ok: false, detail, fix: 'apt-get install mmdebstrap mtools dosfstools fdisk (Debian builder), or install Nix' }
}

async function toolCheck([name, cmd, fix]: [string, string, string]): Promise<Check> {
  const exe = words(cmd)[0] ?? cmd
  const path = await which(exe)
  return path ? { name, ok: true, detail: path } : { name, ok: false, detail: `${exe} not found`, fix }
}

export async function doctor(opts: { deep: boolean }): Promise<Check[]> {
  const checks = await Promise.all([...TOOLS.map(toolCheck), builderCheck()])
  try {
    const names = await libvirt.listDomainNames()
    checks.push({ name: 'libvirt', ok: true, detail: `${libvirtUri()}: connected, ${names.length} domains` })
  } catch (e) {
    checks.push({ name: 'libvirt', ok: false, detail: (e as Error).message, fix: 'Start it: systemctl start libvirtd virtlogd (without systemd: libvirtd -d; virtlogd -d); or set LIBVIRT_URI.' })
  }
  try {
    const fw = findFirmware('x86_64')
    checks.push({ name: 'firmware', ok: true, detail: `${fw.code} + ${fw.vars}` })
  } catch (e) {
    checks.push({ name: 'firmware', ok: false, detail: (e as Error).message, fix: 'apt-get install ovmf, or set OVMF_CODE and OVMF_VARS' })
  }
  // Not fatal: without it identity syncs use the appliance (slower, same result).
  const e2fsWhy = await e2fsUnavailable()
  checks.push(e2fsWhy
    ? { name: 'identity sync without appliance', ok: false, detail: `${e2fsWhy}: identity syncs onto an existing /var launch the guestfish appliance`, fix: 'apt-get install qemu-system-common fuse3 e2fsprogs, and give fleet /dev/fuse' }
    : { name: 'identity sync without appliance', ok: true, detail: 'qemu-storage-daemon FUSE export + e2fsprogs' })
  const kvm = await probeAccel('kvm')
  checks.push(kvm.works
    ? { name: 'kvm', ok: true, detail: kvm.detail }
    : { name: 'kvm', ok: false, detail: `KVM does not run guests here (${kvm.detail}); fleet uses TCG (type qemu), which is slow`, fix: 'Enable virtualisation in the firmware / nested KVM on the parent host, and make /dev/kvm accessible; or accept TCG with FLEET_VIRT_TYPE=qemu.' })
  if (opts.deep) {
    const t0 = performance.now()
    try {
      await runGuestfish([], [['version']], { readonly: true })
      checks.push({ name: 'guestfish appliance', ok: true, detail: `launched in ${Math.round(performance.now() - t0)} ms` })
    } catch (e) {
      checks.push({ name: 'guestfish appliance', ok: false, detail: (e as Error).message, fix: 'Run libguestfs-test-tool; without KVM set LIBGUESTFS_BACKEND_SETTINGS=force_tcg.' })
    }
  }
  return checks
}
