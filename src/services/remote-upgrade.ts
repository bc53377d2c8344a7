// `fleet upgrade` of VMs on remote hosts: one at a time (each is its own wave), each under its
// host-side lock (remote-vm.ts upgradeRemote). Identity is always resynced there: fleet keeps no
// manifest of a remote /var locally to diff against. A VM the upgrade restarts must pass the
// health check; one that fails is rolled back to the overlay it ran before, started and checked
// again, and the rollout stops there (the VMs after it are not started on).
import { UserError } from '../errors.js'
import type { Machine } from '../machines/model.js'
import { readIdentity } from '../machines/repository.js'
import { resolveChannel } from '../store/images.js'
import { vmName } from '../name.js'
import { withStore } from '../ops/vm-op.js'
import type { FleetContext } from './context.js'
import { describeHealth, waitHealthy, type HealthCheck } from './health.js'
import { rollbackRemote } from './remote-rollback.js'
import { remoteConsoleLog, remoteHost, upgradeRemote } from './remote-vm.js'
import type { UpgradeOptions, UpgradeVmResult } from './upgrade-plan.js'

export async function upgradeRemoteVms(ctx: FleetContext, machines: Machine[], opts: UpgradeOptions): Promise<{ vms: UpgradeVmResult[]; stopped?: string }> {
  const check: HealthCheck = opts.health ?? { kind: 'agent' }
  const out: UpgradeVmResult[] = []
  let stopped: string | undefined
  for (const [i, m] of machines.entries()) {
    const image = await resolveChannel(ctx.paths, m.base, m.name, m.arch)
    const plan = { name: m.name, baseFrom: '', baseTo: image.digest, identity: { added: [], changed: [], removed: [] }, xmlChanged: true, xmlDiff: [], wasRunning: false }
    if (ctx.dryRun) {
      out.push({ ...plan, outcome: 'would upgrade', restarted: false, image: image.digest, wave: i + 1 })
      continue
    }
    if (stopped) {
      out.push({ ...plan, outcome: 'not started', restarted: false, image: plan.baseFrom, wave: i + 1 })
      continue
    }
    try {
      const identity = await readIdentity(m, ctx.keyring)
      const mark = await consoleLength(m)
      // Shared store lock: gc cannot delete the image while it is shipped.
      const r = await withStore(ctx, 'shared', () => upgradeRemote(ctx, m, identity, image, { timeoutS: opts.timeoutS, force: opts.force, keep: opts.keep ?? 2 }))
      const done: UpgradeVmResult = { ...plan, baseFrom: r.from, wasRunning: r.wasRunning, outcome: 'upgraded', restarted: r.wasRunning, image: image.digest, wave: i + 1 }
      if (r.wasRunning) {
        const h = await healthOf(ctx, m, check, opts, mark)
        Object.assign(done, { healthy: h.healthy, health: h.detail })
        if (!h.healthy) {
          stopped = `${m.name} failed its health check (${describeHealth(check)}): ${h.detail}`
          ctx.log(`${m.name}: ${h.detail}; rolling it back to ${r.from.slice(0, 12)} and starting it again`)
          const again = await consoleLength(m)
          await withStore(ctx, 'shared', () => rollbackRemote(ctx, m, r.from, { start: true }))
          const h2 = await healthOf(ctx, m, check, opts, again)
          Object.assign(done, { outcome: 'rolled back', image: r.from, healthy: h2.healthy, health: `on ${image.digest.slice(0, 12)}: ${h.detail}; back on ${r.from.slice(0, 12)}: ${h2.detail}` })
        }
      }
      out.push(done)
    } catch (e) {
      if (!(e instanceof UserError) && !opts.all) throw e
      ctx.log(`${m.name}: upgrade failed: ${(e as Error).message}`)
      out.push({ ...plan, outcome: 'failed', restarted: false, error: (e as Error).message, image: plan.baseFrom, wave: i + 1 })
    }
  }
  return { vms: out, ...(stopped ? { stopped } : {}) }
}

async function consoleLength(m: Machine): Promise<number> {
  return ((await remoteConsoleLog(m)) ?? '').replace(/\r/g, '').length
}

function healthOf(ctx: FleetContext, m: Machine, check: HealthCheck, opts: UpgradeOptions, mark: number) {
  return waitHealthy(ctx.paths, vmName(m.name), check, { timeoutS: opts.healthTimeoutS ?? 300, mark, log: ctx.log, uri: remoteHost(m)!.uri, readConsole: () => remoteConsoleLog(m) })
}
