// fleet list: every machine with its domain state and the base it really runs on.
import * as libvirt from '../adapters/libvirt.js'
import { loadAllMachines } from '../machines/repository.js'
import type { Paths } from '../repo.js'
import { currentBaseDigest } from './domain-xml.js'

export interface ListRow {
  name: string
  state: string
  base: string
  baseDigest: string
  memory: string
  vcpus: number
  network: string
  reach?: string
}

export async function listVms(paths: Paths): Promise<ListRow[]> {
  const machines = await loadAllMachines(paths)
  return Promise.all(machines.map(async (m) => ({
    name: m.name,
    state: (await libvirt.domainState(m.name)) ?? 'not defined',
    base: m.base,
    baseDigest: await currentBaseDigest(paths, m),
    memory: m.memory,
    vcpus: m.vcpus,
    network: m.network,
    ...(m.sshPort ? { reach: `fleet ssh ${m.name} (127.0.0.1:${m.sshPort})` } : {}),
  })))
}
