// `fleet upgrade` of VMs on remote hosts: one at a time (each is its own wave), each under its
// host-side lock (remote-vm.ts upgradeRemote). Identity is always resynced there: fleet keeps no
// manifest of a remote /var locally to diff against.
import { UserError } from '../errors.js'
import type { Machine } from '../machines/model.js'
import { readIdentity } from '../machines/repository.js'
import { resolveChannel } from '../store/images.js'
import { withStore } from '../ops/vm-op.js'
import type { FleetContext } from './context.js'
import { upgradeRemote } from './remote-vm.js'
import type { UpgradeOptions, UpgradeVmResult } from './upgrade-plan.js'

export async function upgradeRemoteVms(ctx: FleetContext, machines: Machine[], opts: UpgradeOptions): Promise<UpgradeVmResult[]> {
  const out: UpgradeVmResult[] = []
  for (const [i, m] of machines.entries()) {
    const image = await resolveChannel(ctx.paths, m.base, m.name, m.arch)
    const plan = { name: m.name, baseFrom: '', baseTo: image.digest, identity: { added: [], changed: [], removed: [] }, xmlChanged: true, xmlDiff: [], wasRunning: false }
    if (ctx.dryRun) {
      out.push({ ...plan, outcome: 'would upgrade', restarted: false, image: image.digest, wave: i + 1 })
      continue
    }
    try {
      const identity = await readIdentity(m, ctx.keyring)
      // Shared store lock: gc cannot delete the image while it is shipped.
      const r = await withStore(ctx, 'shared', () => upgradeRemote(ctx, m, identity, image, { timeoutS: opts.timeoutS, force: opts.force, keep: opts.keep ?? 2 }))
      out.push({ ...plan, baseFrom: r.from, wasRunning: r.wasRunning, outcome: 'upgraded', restarted: r.wasRunning, image: image.digest, wave: i + 1 })
    } catch (e) {
      if (!(e instanceof UserError) && !opts.all) throw e
      ctx.log(`${m.name}: upgrade failed: ${(e as Error).message}`)
      out.push({ ...plan, outcome: 'failed', restarted: false, error: (e as Error).message, image: plan.baseFrom, wave: i + 1 })
    }
  }
  return out
}
