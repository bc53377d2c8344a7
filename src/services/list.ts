// fleet list: every machine with its domain state and the base it really runs on.
import * as libvirt from '../adapters/libvirt.js'
import { loadAllMachines } from '../machines/repository.js'
import type { Paths } from '../repo.js'
import { readIntent, vmTarget } from '../ops/intent.js'
import { currentBaseDigest } from './domain-xml.js'
import { hostLabel, isRemote, vmHost } from '../hosts/host-uri.js'
import { parseDomain } from '../xml/serialize.js'

export interface ListRow {
  name: string
  /** The libvirt host it runs on: "local", or user@host:port/system of a remote one. */
  host: string
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
    const host = vmHost(m.host)
    const state = (await libvirt.domainState(m.name, host.uri).catch((e: Error) => `unreachable (${e.message.split('\n')[0]})`)) ?? 'not defined'
    const intent = await readIntent(paths, vmTarget(m.name))
    return {
      name: m.name,
      host: hostLabel(host),
      state,
      base: m.base,
      baseDigest: isRemote(host) ? ((await libvirt.domainXml(m.name, true, host.uri).catch(() => undefined).then((x) => x && parseDomain(x).base?.digest)) ?? 'none') : await currentBaseDigest(paths, m),
      memory: m.memory,
      vcpus: m.vcpus,
      network: m.network,
      reach: await reach(m.name, m.network, m.sshPort, state, host.uri),
      ...(intent ? { interrupted: `${intent.intent.op} at ${intent.intent.phase}` } : {}),
    }
  }))
}

/** How to get into a VM: fleet ssh with its address, or the console where it has no network. */
async function reach(name: string, network: string, sshPort: number | undefined, state: string, uri: string): Promise<string> {
  if (network === 'none') return `fleet console ${name}`
  if (network === 'user') return `fleet ssh ${name} (127.0.0.1:${sshPort ?? '?'})`
  const ips = state === 'running' ? await libvirt.domainIPv4(name, uri) : []
  return `fleet ssh ${name} (${ips[0] ?? `${network}, address once running`})`
}
