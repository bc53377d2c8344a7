// How `network: "user"` is realised: passt where libvirt supports it (its domain capabilities
// list the passt backend and passt is installed), else QEMU's slirp with hostfwd. Overridden by
// FLEET_USER_NET=passt|slirp.
import { which } from './adapters/exec.js'
import * as libvirt from './adapters/libvirt.js'
import { UserError } from './errors.js'
import type { Env } from './util/env.js'
import type { UserNetBackend } from './xml/domain.js'

export async function resolveUserNet(virtType: string, arch: string, env: Env = process.env): Promise<UserNetBackend> {
  const v = env.FLEET_USER_NET
  if (v) {
    if (v === 'passt' || v === 'slirp') return v
    throw new UserError(`FLEET_USER_NET "${v}" must be passt or slirp`)
  }
  const [types, passt] = await Promise.all([libvirt.userNetBackendTypes(virtType, arch), which('passt')])
  return types?.includes('passt') && passt ? 'passt' : 'slirp'
}
