// A typed model of the libvirt domain XML fleet generates; names follow libvirt's schema
// (https://libvirt.org/formatdomain.html). Only what fleet sets is modelled.

export type VirtType = 'kvm' | 'qemu'

export interface Domain {
  type: VirtType
  name: string
  uuid: string
  /** fleet's own metadata element, in its namespace. */
  metadata: FleetMetadata
  memoryKiB: number
  vcpu: number
  os: Os
  features: { acpi: boolean; apic: boolean }
  cpu?: Cpu
  clock: { offset: 'utc' }
  onPoweroff: LifecycleAction
  onReboot: LifecycleAction
  onCrash: LifecycleAction
  devices: Devices
}

export type LifecycleAction = 'destroy' | 'restart'

export interface FleetMetadata {
  /** The fleet id of the state directory that defined the domain (see store/fleet-id.ts). */
  fleetId: string
  machine: string
  base: { channel: string; digest: string }
}

export interface Os {
  arch: 'x86_64' | 'aarch64'
  machine: 'q35' | 'virt'
  loader: { path: string; readonly: true; type: 'pflash'; secure: boolean }
  /** No path: libvirt keeps the NVRAM in its own folder on the host (remote hosts). */
  nvram: { path?: string; template: string }
  boot: 'hd'
}

export interface Cpu {
  mode: 'host-passthrough' | 'custom'
  model?: string
}

export interface Disk {
  source: string
  target: 'vda' | 'vdb'
  readonly: boolean
  driverType: 'qcow2' | 'raw'
}

export type Interface =
  | { type: 'network'; network: string; mac: string }
  /**
   * User-mode networking. passt: libvirt's <interface type='user'> with <portForward> (libvirt
   * that supports it). slirp: QEMU's built-in stack with hostfwd, passed as <qemu:commandline>
   * because libvirt has no port-forward element for it (e.g. Debian 12's libvirt 9.0).
   */
  | { type: 'user'; mac: string; backend: UserNetBackend; portForwards: PortForward[] }

export type UserNetBackend = 'passt' | 'slirp'

export interface PortForward {
  proto: 'tcp' | 'udp'
  address: string
  hostPort: number
  guestPort: number
}

export interface Devices {
  disks: Disk[]
  interfaces: Interface[]
  /** Serial console on a pty (virsh console) whose output virtlogd also appends to `log`. */
  serial: { log: string }
  guestAgent: boolean
  rng: boolean
}
