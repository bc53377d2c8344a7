// From a machine definition to the domain model.
import type { Firmware } from '../firmware.js'
import type { Machine } from '../machines/model.js'
import type { VmFiles } from '../repo.js'
import type { Domain, Interface, LifecycleAction, UserNetBackend, VirtType } from './domain.js'

export interface DomainContext {
  virtType: VirtType
  firmware: Firmware
  files: VmFiles
  baseDigest: string
  /** This state directory's fleet id, written into the fleet metadata (ownership). */
  fleetId: string
  /** What a guest reboot does; tests use destroy so a broken guest cannot loop. */
  onReboot: LifecycleAction
  /** How network "user" is realised on this host (see Interface). */
  userNet: UserNetBackend
}

function interfaces(m: Machine, userNet: UserNetBackend): Interface[] {
  if (m.network === 'none') return []
  if (m.network === 'user') {
    const forwards = m.sshPort ? [{ proto: 'tcp' as const, address: '127.0.0.1', hostPort: m.sshPort, guestPort: 22 }] : []
    return [{ type: 'user', mac: m.mac, backend: userNet, portForwards: forwards }]
  }
  return [{ type: 'network', network: m.network, mac: m.mac }]
}

export function buildDomain(m: Machine, ctx: DomainContext): Domain {
  const x86 = m.arch === 'x86_64'
  return {
    type: ctx.virtType,
    name: m.name,
    uuid: m.uuid,
    metadata: { fleetId: ctx.fleetId, machine: m.name, base: { channel: m.base, digest: ctx.baseDigest } },
    memoryKiB: m.memoryBytes / 1024,
    vcpu: m.vcpus,
    os: {
      arch: m.arch,
      machine: x86 ? 'q35' : 'virt',
      loader: { path: ctx.firmware.code, readonly: true, type: 'pflash', secure: false },
      nvram: { path: ctx.files.nvram, template: ctx.firmware.vars },
      boot: 'hd',
    },
    features: { acpi: true, apic: x86 },
    cpu: ctx.virtType === 'kvm' ? { mode: 'host-passthrough' } : x86 ? undefined : { mode: 'custom', model: 'cortex-a57' },
    clock: { offset: 'utc' },
    onPoweroff: 'destroy',
    onReboot: ctx.onReboot,
    onCrash: 'destroy',
    devices: {
      disks: [
        { source: ctx.files.boot, target: 'vda', readonly: true, driverType: 'qcow2' },
        { source: ctx.files.var, target: 'vdb', readonly: false, driverType: 'qcow2' },
      ],
      interfaces: interfaces(m, ctx.userNet),
      serial: { log: ctx.files.console },
      guestAgent: true,
      rng: true,
    },
  }
}
