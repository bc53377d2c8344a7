// machine.json: the hardware side of a machine definition.
import type { VmName } from '../name.js'

export type Arch = 'x86_64' | 'aarch64'
export const ARCHES: readonly Arch[] = ['x86_64', 'aarch64']

/** This host's architecture in fleet's terms, if it is one fleet runs guests for. */
export function hostArch(): Arch | undefined {
  return process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : undefined
}

/** The on-disk shape of machines/<name>/machine.json. Sizes are strings with units. */
export interface MachineJson {
  memory: string
  vcpus: number
  varSize: string
  /** libvirt network name, "user" for user-mode networking with SSH forward, or "none". */
  network: string
  mac: string
  uuid: string
  arch: Arch
  /** Image store channel the boot overlay is based on. */
  base: string
  /** Host port on 127.0.0.1 forwarded to the guest's port 22 (user networking only). */
  sshPort?: number
  /** libvirt URI of the host it runs on (absent: this host, as --connect / LIBVIRT_DEFAULT_URI say). */
  host?: string
}

export const MACHINE_FIELDS: readonly (keyof MachineJson)[] = ['memory', 'vcpus', 'varSize', 'network', 'mac', 'uuid', 'arch', 'base', 'sshPort', 'host']

/** A loaded, validated machine. */
export interface Machine extends MachineJson {
  name: VmName
  dir: string
  memoryBytes: number
  varSizeBytes: number
}

/** Identity files, names as in machines/<name>/ and /var/identity/ (docs/guest-contract.md). */
export const IDENTITY_FILES = [
  'machine-id',
  'hostname',
  'ssh_host_ed25519_key',
  'ssh_host_ed25519_key.pub',
  'resolv.conf',
  'hosts',
  'tcp_ports',
  'udp_ports',
  'admin_authorized_keys',
  'user_authorized_keys',
] as const
export type IdentityFile = (typeof IDENTITY_FILES)[number]

/** Mode each identity file gets on the /var disk; the private host key stays 0600. */
export function identityMode(file: string): number {
  return file === 'ssh_host_ed25519_key' ? 0o600 : 0o644
}

export const DEFAULTS = {
  memory: '512M',
  vcpus: 1,
  varSize: '1G',
  network: 'none',
  arch: 'x86_64' as Arch,
  base: 'base',
  dns: ['9.9.9.9', '1.1.1.1'],
  tcpPorts: ['22'],
}
