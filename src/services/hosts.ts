// `fleet list --hosts`: the libvirt hosts the machines run on, with their VMs and, for a remote
// host, the base images shipped there and how many boot overlays there use each.
import { hostLabel, isRemote, vmHost } from '../hosts/host-uri.js'
import { loadAllMachines } from '../machines/repository.js'
import type { Paths } from '../repo.js'
import { baseUsers } from './remote-disks.js'

export interface HostRow {
  host: string
  uri: string
  vms: string[]
  /** Remote hosts: base image digests in fleet's pool there → boot overlays using each. */
  images?: Record<string, number>
  /** Why the host could not be asked (unreachable, no pool yet…). */
  error?: string
}

export async function listHosts(paths: Paths): Promise<HostRow[]> {
  const byUri = new Map<string, HostRow>()
  for (const m of await loadAllMachines(paths)) {
    const h = vmHost(m.host)
    const row = byUri.get(h.uri) ?? { host: hostLabel(h), uri: h.uri, vms: [] }
    row.vms.push(m.name)
    byUri.set(h.uri, row)
  }
  return Promise.all([...byUri.values()].map(async (row) => {
    const h = vmHost(row.uri === vmHost(undefined).uri ? undefined : row.uri)
    if (!isRemote(h)) return row
    try {
      return { ...row, images: Object.fromEntries(await baseUsers(h)) }
    } catch (e) {
      return { ...row, error: (e as Error).message.split('\n')[0] }
    }
  }))
}
