// Which libvirt domains are this fleet's: a domain is ours when its fleet metadata carries this
// state directory's fleet id. Anything else — another fleet's domain, one defined with plain
// virsh or another tool — is refused before fleet changes anything, unless --adopt.
//
// Domains defined by fleet versions before fleet ids carry fleet metadata without an id. Such a
// "legacy" domain counts as ours only when its disks are this state directory's vms/NAME/ files
// (it was defined from here, so it can only be ours); any other legacy domain needs --adopt.
// The next define writes the id, so a legacy domain stops being legacy on its first upgrade or
// define-vm.
import { realpath } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import * as libvirt from '../adapters/libvirt.js'
import { UserError } from '../errors.js'
import type { VmName } from '../name.js'
import type { Paths } from '../repo.js'
import { readFleetId } from '../store/fleet-id.js'

/** What assertOwned found: no domain of that name, a domain of this fleet, or a foreign one taken over with --adopt. */
export type Ownership = 'no-domain' | 'ours' | 'adopted'

export interface OwnershipOptions {
  /** Take over a domain this fleet does not own (the next define writes this fleet's id into it). */
  adopt?: boolean
  /** Told when a foreign domain is adopted. */
  log?: (line: string) => void
  /** The VM's remote libvirt host (default: this one). Its domains never have local disks, so a legacy one there is never ours. */
  uri?: string
}

/** Resolves symlinks of the existing part of `p`, so two spellings of one folder compare equal. */
async function canonical(p: string): Promise<string> {
  const abs = resolve(p)
  try {
    return await realpath(abs)
  } catch {
    const up = dirname(abs)
    return up === abs ? abs : join(await canonical(up), abs.slice(up.length + 1))
  }
}

/** True if every disk of the domain lies in `vmDir` (and it has at least one). */
async function disksIn(disks: string[], vmDir: string): Promise<boolean> {
  if (!disks.length) return false
  const dir = await canonical(vmDir)
  for (const d of disks) if (dirname(await canonical(d)) !== dir) return false
  return true
}

/** Where a domain's disks live, for messages ("disks in /x/vms/web1"). */
function diskPlace(disks: string[]): string {
  const dirs = [...new Set(disks.map((d) => dirname(d)))]
  return dirs.length ? `disks in ${dirs.join(', ')}` : 'no disks'
}

/**
 * Why this fleet (fleet id `ours`, or none yet) does not own the domain `name`, or undefined if it
 * does. `ownDisks` says whether the domain's disks are this state directory's vms/NAME/ files.
 */
export function ownershipProblem(name: string, ours: string | undefined, owner: libvirt.DomainOwner, ownDisks: boolean): string | undefined {
  const domain = `the libvirt domain ${name}`
  switch (owner.kind) {
    case 'fleet':
      if (owner.fleetId === ours) return undefined
      return `machine ${name}: ${domain} belongs to another fleet (id ${owner.fleetId}, ${diskPlace(owner.disks)}), not to this one (${ours ? `id ${ours}` : 'no fleet id yet'})`
    case 'legacy':
      if (ownDisks) return undefined
      return `machine ${name}: ${domain} was defined by an older fleet that recorded no fleet id, from another state directory (${diskPlace(owner.disks)})`
    case 'none':
      return `machine ${name}: ${domain} has no fleet metadata: it was defined outside fleet (${diskPlace(owner.disks)})`
  }
}

/**
 * Refuses (UserError, exit 2) a domain NAME that exists and is not this fleet's, naming what owns
 * it; with `adopt` lets it through. Reads only: call it before changing anything, inside the VM's
 * lock where there is one.
 */
export async function assertOwned(paths: Paths, name: VmName, opts: OwnershipOptions = {}): Promise<Ownership> {
  const owner = await libvirt.domainOwner(name, opts.uri)
  if (!owner) return 'no-domain'
  const ours = await readFleetId(paths)
  const ownDisks = !opts.uri && owner.kind === 'legacy' && (await disksIn(owner.disks, join(paths.vms, name)))
  const problem = ownershipProblem(name, ours, owner, ownDisks)?.replace(/^(machine \S+: the libvirt domain \S+)/, (m) => (opts.uri ? `${m} on ${opts.uri}` : m))
  if (!problem) return 'ours'
  if (opts.adopt) {
    opts.log?.(`${problem}; adopting it (--adopt)`)
    return 'adopted'
  }
  throw new UserError(problem,
    `Run this from the fleet that owns it, or pick another machine name. To let this fleet take the domain over (and replace its definition), pass --adopt.`)
}
