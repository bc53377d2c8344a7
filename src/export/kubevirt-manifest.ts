// The Kubernetes objects of one machine exported to KubeVirt, as plain data (pure: no I/O):
// - a Secret with the identity files (machines/NAME/, exactly what fleet writes into
//   /var/identity); the host private key lives here, never in a registry image;
// - a VirtualMachine (kubevirt.io/v1) booting the base image's containerDisk read-only with UEFI
//   and Secure Boot off, the machine's memory and vCPUs, a /var DataVolume imported from the
//   blank /var template image, and the Secret attached as a disk with serial `fleet-identity`,
//   which the guest copies into /var/identity at every boot (docs/guest-contract.md).
// Both go into one `List`, which `kubectl apply -f` takes as it is.
import { createHash } from 'node:crypto'
import type { Machine } from '../machines/model.js'

/** The serial of the identity disk: the guest's initrd looks for it (docs/guest-contract.md). */
export const IDENTITY_SERIAL = 'fleet-identity'
/** Label keys on every object (the domain metadata's namespace host, as a DNS prefix). */
export const LABEL_FLEET = 'fleet-vm.github.com/fleet-id'
export const LABEL_MACHINE = 'fleet-vm.github.com/machine'

export interface ExportInput {
  machine: Machine
  fleetId: string
  /** Identity files by name (machines/NAME/), bytes as fleet would write them. */
  identity: ReadonlyMap<string, Buffer>
  /** The containerDisk reference of the base image, REGISTRY/REPO:TAG. */
  bootImage: string
  /** The /var template image the DataVolume imports, REGISTRY/REPO:TAG. */
  varImage: string
}

type Obj = Record<string, unknown>

/** A Kubernetes quantity: whole MiB as `NMi`, otherwise plain bytes. */
export function quantity(bytes: number): string {
  return bytes % 1024 ** 2 === 0 ? `${bytes / 1024 ** 2}Mi` : String(bytes)
}

export const secretName = (name: string) => `${name}-fleet-identity`
export const varVolumeName = (name: string) => `${name}-var`

export function identitySecret(input: ExportInput): Obj {
  const data: Record<string, string> = {}
  for (const [file, bytes] of [...input.identity].sort(([a], [b]) => (a < b ? -1 : 1))) data[file] = bytes.toString('base64')
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: secretName(input.machine.name), labels: labels(input) }, type: 'Opaque', data }
}

function labels(input: ExportInput): Record<string, string> {
  return { [LABEL_FLEET]: input.fleetId, [LABEL_MACHINE]: input.machine.name }
}

export function virtualMachine(input: ExportInput): Obj {
  const m = input.machine
  const memory = quantity(m.memoryBytes)
  const networked = m.network !== 'none'
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: m.name, labels: labels(input) },
    spec: {
      runStrategy: 'Always',
      dataVolumeTemplates: [{
        metadata: { name: varVolumeName(m.name), labels: labels(input) },
        spec: {
          // A blank ext4 labelled `var` (no identity: the registry is no place for a host key).
          source: { registry: { url: `docker://${input.varImage}` } },
          storage: { resources: { requests: { storage: quantity(m.varSizeBytes) } } },
        },
      }],
      template: {
        metadata: { labels: labels(input) },
        spec: {
          architecture: m.arch === 'aarch64' ? 'arm64' : 'amd64',
          domain: {
            firmware: { uuid: m.uuid, bootloader: { efi: { secureBoot: false } } },
            cpu: { sockets: 1, cores: m.vcpus, threads: 1 },
            memory: { guest: memory },
            resources: { requests: { memory } },
            devices: {
              disks: [
                { name: 'boot', bootOrder: 1, disk: { bus: 'virtio', readonly: true } },
                { name: 'var', disk: { bus: 'virtio' } },
                { name: 'identity', serial: IDENTITY_SERIAL, disk: { bus: 'virtio', readonly: true } },
              ],
              ...(networked ? { interfaces: [{ name: 'default', macAddress: m.mac, masquerade: {} }] } : { autoattachPodInterface: false }),
            },
          },
          ...(networked ? { networks: [{ name: 'default', pod: {} }] } : {}),
          volumes: [
            { name: 'boot', containerDisk: { image: input.bootImage } },
            { name: 'var', dataVolume: { name: varVolumeName(m.name) } },
            { name: 'identity', secret: { secretName: secretName(m.name) } },
          ],
        },
      },
    },
  }
}

/** The file `fleet export kubevirt` writes for a machine: a List of the Secret and the VirtualMachine. */
export function exportList(input: ExportInput): Obj {
  return { apiVersion: 'v1', kind: 'List', items: [identitySecret(input), virtualMachine(input)] }
}

/** The List with the Secret's values replaced by their sha256 (for diffs shown on a terminal). */
export function redactSecrets(list: Obj): Obj {
  const items = (list.items as Obj[] | undefined) ?? []
  return {
    ...list,
    items: items.map((o) => o.kind !== 'Secret' || typeof o.data !== 'object' || !o.data ? o : {
      ...o,
      data: Object.fromEntries(Object.entries(o.data as Record<string, unknown>).map(([k, v]) => [k, `<redacted: ${digestOf(v)}>`])),
    }),
  }
}

function digestOf(v: unknown): string {
  // Only a digest of the value is shown, so a diff says *that* a secret changed, never what it is.
  return `sha256:${createHash('sha256').update(String(v)).digest('hex').slice(0, 16)}`
}
