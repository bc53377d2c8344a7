// The throwaway domain of a boot verification (services/verify-image.ts). Its name holds a dot,
// so it can never be a machine's (machine names are hostname labels), and names this fleet and
// the scratch folder its disks are in; its metadata carries this fleet's id like every domain
// fleet defines. A verification killed with its domain running leaves both behind: whoever
// sweeps the stale folder (ops/scratch.ts) removes the domain first.
import { basename } from 'node:path'
import * as libvirt from '../adapters/libvirt.js'
import type { Paths } from '../repo.js'
import { readFleetId } from '../store/fleet-id.js'

export const VERIFY_DOMAIN_PREFIX = 'fleet-verify.'

/** fleet-verify.<first 8 of the fleet id>.<scratch folder name>. */
export function verifyDomainName(fleetId: string, scratchDir: string): string {
  return `${VERIFY_DOMAIN_PREFIX}${fleetId.slice(0, 8)}.${basename(scratchDir)}`
}

/** Powers off and undefines (with NVRAM) a domain this fleet owns. */
export async function removeDomain(name: string): Promise<void> {
  await libvirt.destroy(name)
  await libvirt.undefineWithNvram(name)
}

/**
 * Removes the throwaway domain that booted from scratch folder `dir`, if it exists and carries
 * this fleet's id (anything else of that name is left alone). Returns its name, or undefined.
 */
export async function removeVerifyDomain(paths: Paths, dir: string): Promise<string | undefined> {
  const id = await readFleetId(paths)
  if (!id) return undefined
  const name = verifyDomainName(id, dir)
  const owner = await libvirt.domainOwner(name)
  if (!owner || owner.kind !== 'fleet' || owner.fleetId !== id) return undefined
  await removeDomain(name)
  return name
}
