// Settings every VM operation needs, resolved once per command.
import type { Log } from '../util/progress.js'
import { UserError } from '../errors.js'
import type { Paths } from '../repo.js'
import { resolveVirtType } from '../virt-type.js'
import { useTcgAppliance } from '../adapters/guestfish.js'
import type { LifecycleAction, VirtType } from '../xml/domain.js'
import { Keyring } from '../secrets/identities.js'

export interface FleetContext {
  paths: Paths
  /** Resolved on first use: only XML generation needs it, and auto-detection probes KVM. */
  virtType: () => Promise<VirtType>
  onReboot: LifecycleAction
  dryRun: boolean
  /** --adopt: act on a domain of a VM's name that this fleet does not own (see ownership.ts). */
  adopt?: boolean
  /** Progress lines and long steps go here (stderr), never to stdout; silent under --json. */
  log: Log
  /** The admin's keys that decrypt machine secrets (--identity, FLEET_AGE_IDENTITY, ~/.ssh…), looked up on first use. */
  keyring: Keyring
}

export function onRebootAction(env = process.env): LifecycleAction {
  const v = env.FLEET_ON_REBOOT ?? 'restart'
  if (v !== 'restart' && v !== 'destroy') throw new UserError(`FLEET_ON_REBOOT "${v}" must be restart or destroy`)
  return v
}

export function makeContext(paths: Paths, opts: { virtType?: string; dryRun?: boolean; adopt?: boolean; identity?: string; log: Log }): FleetContext {
  let vt: Promise<VirtType> | undefined
  const virtType = () => (vt ??= resolveVirtType(opts.virtType, paths.state).then((v) => {
    useTcgAppliance(v === 'qemu')
    return v
  }))
  return { paths, virtType, onReboot: onRebootAction(), dryRun: Boolean(opts.dryRun), adopt: opts.adopt, log: opts.log, keyring: new Keyring(opts.identity) }
}

