// fleet list: every machine with its domain state and the base it really runs on.
import * as libvirt from '../adapters/libvirt.js'
import { loadAllMachines } from '../machines/repository.js'
import type { Paths } from '../repo.js'
import { readIntent, vmTarget } from '../ops/intent.js'
import { currentBaseDigest } from './domain-xml.js'

export interface ListRow {
  name: string
  state: string
  base: string
  baseDigest: string
  memory: string
  vcpus: number
  network: string
  reach: string
  /** An operation a killed fleet left on this VM; the next command touching it (or `fleet repair`) resolves it. */
  interrupted?: string
}

export async function listVms(paths: Paths): Promise<ListRow[]> {
  const machines = await loadAllMachines(paths)
  return Promise.all(machines.map(async (m) => {
    const state = (await libvirt.domainState(m.name)) ?? 'not defined'
    const intent = await readIntent(paths, vmTarget(m.name))
    return {
      name: m.name,
      state,
      base: m.base,
      baseDigest: await currentBaseDigest(paths, m),
      memory: m.memory,
      vcpus: m.vcpus,
      network: m.network,
      reach: await reach(m.name, m.network, m.sshPort, state),
      ...(intent ? { interrupted: `${intent.intent.op} at ${intent.intent.phase}` } : {}),
    }
  }))
}

/** How to get into a VM: fleet ssh with its address, or the console where it has no network. */
async function reach(name: string, network: string, sshPort: number | undefined, state: string): Promise<string> {
  if (network === 'none') return `fleet console ${name}`
  if (network === 'user') return `fleet ssh ${name} (127.0.0.1:${sshPort ?? '?'})`
  const ips = state === 'running' ? await libvirt.domainIPv4(name) : []
  return `fleet ssh ${name} (${ips[0] ?? `${network}, address once running`})`
}
