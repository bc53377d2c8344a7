// How `network: "user"` is realised: passt where libvirt supports it (its domain capabilities
// list the passt backend and passt is installed), else QEMU's slirp with hostfwd. Overridden by
// FLEET_USER_NET=passt|slirp.
import { which } from './adapters/exec.js'
import * as libvirt from './adapters/libvirt.js'
import { UserError } from './errors.js'
import type { Env } from './util/env.js'
import type { UserNetBackend } from './xml/domain.js'

const probed = new Map<string, Promise<UserNetBackend>>()

/** Asks libvirt once per process and domain type/arch (upgrade --all renders many VMs). */
function probe(virtType: string, arch: string): Promise<UserNetBackend> {
  const key = `${virtType}/${arch}`
  let p = probed.get(key)
  if (!p) {
    p = Promise.all([libvirt.userNetBackendTypes(virtType, arch), which('passt')]).then(([types, passt]) => (types?.includes('passt') && passt ? 'passt' : 'slirp'))
    probed.set(key, p)
  }
  return p
}

export async function resolveUserNet(virtType: string, arch: string, env: Env = process.env): Promise<UserNetBackend> {
  const v = env.FLEET_USER_NET
  if (v) {
    if (v === 'passt' || v === 'slirp') return v
    throw new UserError(`FLEET_USER_NET "${v}" must be passt or slirp`)
  }
  return probe(virtType, arch)
}
