// `fleet upgrade` of VMs on remote hosts, in the same rolling waves as local ones: running VMs in
// waves of at most --max-unavailable, the VMs of a wave upgraded side by side (each under its
// local lock, a local intent record and its host-side lock: remote-vm.ts upgradeRemote); every VM
// a wave restarted must pass the health check before the next wave starts; one that fails is
// rolled back to the overlay it ran before, started and checked again, and the rollout stops
// there (later waves and the local VMs are not started on). Stopped VMs go last, not started.
// A VM on its channel's image whose identity and definition match machines/ is left alone
// (remote-drift.ts); any other is resynced and redefined in full.
// A killed run is finished by the next command on the VM or `fleet repair` (remote-upgrade-recovery.ts).
import * as libvirt from '../adapters/libvirt.js'
import { UserError } from '../errors.js'
import type { Machine } from '../machines/model.js'
import { loadMachine, readIdentity } from '../machines/repository.js'
import { vmName, type VmName } from '../name.js'
import { beginIntent, vmTarget } from '../ops/intent.js'
import { withStore, withVms } from '../ops/vm-op.js'
import { resolveChannel, type StoredImage } from '../store/images.js'
import { step } from '../util/interrupt.js'
import { parseDomain } from '../xml/serialize.js'
import type { FleetContext } from './context.js'
import { currentBaseDigest } from './domain-xml.js'
import { describeHealth, waitHealthy, type HealthCheck } from './health.js'
import { vmVolumes } from './remote-disks.js'
import { rollbackRemote } from './remote-rollback.js'
import { finishOrRestore, type RemoteUpgradeData } from './remote-upgrade-recovery.js'
import { drifted, remoteDrift } from './remote-drift.js'
import { assertRemoteOwned, remoteConsoleLog, remoteHost, upgradeRemote } from './remote-vm.js'
import { upgradeFailed, waves, type UpgradeOptions, type UpgradePlan, type UpgradeResult, type UpgradeVmResult } from './upgrade-plan.js'

interface Planned {
  m: Machine
  image: StoredImage
  plan: UpgradePlan
  result?: UpgradeVmResult
  wave?: number
}

const noIdentityDiff = () => ({ added: [], changed: [], removed: [] })

/** What the VM is on there now and whether it runs (or an interrupted upgrade owes it a start). */
async function planRemoteVm(ctx: FleetContext, m: Machine): Promise<Planned> {
  const host = remoteHost(m)!
  const image = await resolveChannel(ctx.paths, m.base, m.name, m.arch)
  const live = await libvirt.domainXml(m.name, true, host.uri)
  if (!live) throw new UserError(`machine ${m.name}: no libvirt domain of that name is defined on ${host.uri}`, `Create it with \`fleet create-vm ${m.name}\`.`)
  // Another fleet's (or a hand-made) domain of this name is refused before anything changes.
  await assertRemoteOwned(ctx, m)
  const wasRunning = (await libvirt.isActive(m.name, host.uri)) || (await vmVolumes(host, m.name)).owedStart
  const baseFrom = parseDomain(live).base?.digest ?? 'unknown'
  const drift = await remoteDrift(ctx, m, live)
  const plan: UpgradePlan = { name: m.name, baseFrom, baseTo: image.digest, identity: drift.identity, xmlChanged: drift.changes.length > 0, xmlDiff: drift.changes.map((c) => `${c.field}: ${c.from} -> ${c.to}`), wasRunning }
  // On its channel's image already, with nothing else to change: left alone (not stopped).
  const result: UpgradeVmResult | undefined = baseFrom === image.digest && !drifted(drift) ? { ...plan, outcome: 'unchanged', restarted: false, image: baseFrom } : undefined
  return { m, image, plan, ...(result ? { result } : {}) }
}

/**
 * Upgrades `remote` (machines on remote hosts) in waves, then the other named VMs with
 * `upgradeLocal` unless the rollout stopped first (then they are reported `not started`).
 */
export async function upgradeWithRemote(ctx: FleetContext, names: VmName[], remote: Machine[], opts: UpgradeOptions, upgradeLocal: (names: VmName[]) => Promise<UpgradeResult>): Promise<UpgradeResult> {
  const check: HealthCheck = opts.health ?? { kind: 'agent' }
  const maxUnavailable = opts.maxUnavailable ?? 1
  const done = await upgradeRemoteVms(ctx, remote, opts, check, maxUnavailable)
  const rest = names.filter((n) => !remote.some((m) => m.name === n))
  const local = rest.length && !done.stopped ? await upgradeLocal(rest) : undefined
  const notStarted = done.stopped ? await Promise.all(rest.map(async (name): Promise<UpgradeVmResult> => {
    const image = await loadMachine(ctx.paths, name).then((m) => currentBaseDigest(ctx.paths, m), () => 'unknown')
    return { name, baseFrom: image, baseTo: image, identity: noIdentityDiff(), xmlChanged: false, xmlDiff: [], wasRunning: false, outcome: 'not started', restarted: false, image, state: `not touched: ${done.stopped}` }
  })) : []
  const stopped = done.stopped ?? local?.stopped
  const vms = [...done.vms, ...(local?.vms ?? []), ...notStarted].sort((x, y) => (x.name < y.name ? -1 : 1))
  return { dryRun: ctx.dryRun, health: describeHealth(check), maxUnavailable, timings: local?.timings ?? {}, vms, ...(stopped ? { stopped } : {}) }
}

async function upgradeRemoteVms(ctx: FleetContext, machines: Machine[], opts: UpgradeOptions, check: HealthCheck, maxUnavailable: number): Promise<{ vms: UpgradeVmResult[]; stopped?: string }> {
  const names = machines.map((m) => vmName(m.name))
  const run = async () => {
    const planned = await Promise.all(machines.map(async (m) => {
      try {
        return await planRemoteVm(ctx, m)
      } catch (e) {
        if (!(e instanceof UserError) || !opts.all) throw e
        ctx.log(`${m.name}: not upgraded: ${e.message}`)
        return { name: m.name, error: e.message }
      }
    }))
    const plans = planned.filter((p): p is Planned => 'plan' in p)
    const failedToPlan: UpgradeVmResult[] = planned.filter((p): p is { name: VmName; error: string } => 'error' in p).map((p) => ({
      name: p.name, baseFrom: 'unknown', baseTo: 'unknown', identity: noIdentityDiff(), xmlChanged: false, xmlDiff: [], wasRunning: false, outcome: 'failed', restarted: false, error: p.error, state: 'not touched', image: 'unknown',
    }))
    const all = waves(plans.filter((p) => !p.result), maxUnavailable)
    all.forEach((w, i) => w.forEach((p) => (p.wave = i + 1)))
    if (ctx.dryRun) return { vms: [...plans.map((p) => p.result ?? { ...p.plan, outcome: 'would upgrade' as const, restarted: false, image: p.plan.baseFrom, wave: p.wave }), ...failedToPlan] }
    let stopped: string | undefined
    for (const [i, wave] of all.entries()) {
      if (stopped) break
      if (all.length > 1) ctx.log(`Wave ${i + 1} of ${all.length} (remote): ${wave.map((p) => p.plan.name).join(', ')}`)
      // Every VM of the wave ends (upgraded, failed or rolled back) before an unexpected error of one ends the command.
      const settled = await Promise.allSettled(wave.map((p) => upgradeOne(ctx, p, opts, check)))
      const thrown = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (thrown) throw thrown.reason
      const bad = wave.filter((p) => upgradeFailed(p.result!))
      if (bad.length) stopped = `the rollout stopped after wave ${i + 1}: ${bad.map((p) => `${p.plan.name} ${p.result!.outcome}${p.result!.healthy === false ? ', unhealthy' : ''}`).join('; ')}`
    }
    if (stopped) ctx.log(stopped)
    for (const p of plans.filter((x) => !x.result)) p.result = { ...p.plan, outcome: 'not started', restarted: false, image: p.plan.baseFrom, state: `not touched: ${stopped}` }
    return { vms: [...plans.map((p) => ({ ...p.result!, wave: p.wave })), ...failedToPlan], ...(stopped ? { stopped } : {}) }
  }
  return ctx.dryRun ? run() : withVms(ctx, names, run)
}

/** One VM of a wave: the upgrade on its host (recorded locally first), then its health gate. */
async function upgradeOne(ctx: FleetContext, p: Planned, opts: UpgradeOptions, check: HealthCheck): Promise<void> {
  const { m, image } = p
  const data: RemoteUpgradeData = { remote: true, from: p.plan.baseFrom, to: image.digest, wasRunning: p.plan.wasRunning, keep: opts.keep ?? 2 }
  const intent = await beginIntent<RemoteUpgradeData>(ctx.paths, vmTarget(p.plan.name), 'upgrade', 'remote', data)
  step('remote-upgrade:begin')
  let r: { from: string; wasRunning: boolean }
  const mark = await consoleLength(m)
  try {
    const identity = await readIdentity(m, ctx.keyring)
    // Shared store lock: gc cannot delete the image while it is shipped.
    r = await withStore(ctx, 'shared', () => upgradeRemote(ctx, m, identity, image, { timeoutS: opts.timeoutS, force: opts.force, keep: data.keep }))
  } catch (e) {
    // Back to a consistent state: a VM the run had stopped is started on whatever definition it has.
    const after = await finishOrRestore(ctx, m, data, { rollForward: false }).catch((e2: Error) => `and putting it back failed: ${e2.message}`)
    await intent.done()
    p.result = { ...p.plan, outcome: 'failed', restarted: false, error: (e as Error).message, image: p.plan.baseFrom, state: after }
    ctx.log(`${m.name}: upgrade FAILED: ${(e as Error).message} (${after})`)
    return
  }
  await intent.done()
  p.result = { ...p.plan, outcome: 'upgraded', restarted: r.wasRunning, image: image.digest }
  ctx.log(`${m.name}: ${r.from.slice(0, 12)} → ${image.digest.slice(0, 12)} on ${remoteHost(m)!.ssh.host}${r.wasRunning ? ', restarted' : ''}`)
  if (!r.wasRunning) return
  const h = await healthOf(ctx, m, check, opts, mark)
  p.result = { ...p.result, healthy: h.healthy, health: h.detail }
  ctx.log(`${m.name}: ${h.healthy ? 'healthy' : 'UNHEALTHY'} after ${h.seconds}s (${h.detail})`)
  if (h.healthy) return
  if (r.from === image.digest) {
    p.result = { ...p.result, outcome: 'failed', error: `unhealthy after the upgrade: ${h.detail}`, state: `on ${image.digest.slice(0, 12)}, not rolled back: this upgrade only resynced identity, there is no older overlay of its own to go back to` }
    return
  }
  ctx.log(`${m.name}: rolling back to ${r.from.slice(0, 12)} and starting it again`)
  try {
    const again = await consoleLength(m)
    await withStore(ctx, 'shared', () => rollbackRemote(ctx, m, r.from, { start: true }))
    const h2 = await healthOf(ctx, m, check, opts, again)
    p.result = {
      ...p.result, outcome: 'rolled back', image: r.from, healthy: h2.healthy, health: h2.detail, error: `unhealthy on ${image.digest.slice(0, 12)}: ${h.detail}`,
      state: `rolled back to ${r.from.slice(0, 12)}, running, ${h2.healthy ? 'healthy' : `unhealthy there too: ${h2.detail}`}`,
    }
  } catch (e) {
    p.result = { ...p.result, outcome: 'failed', healthy: false, error: `unhealthy after the upgrade (${h.detail}); the rollback failed: ${(e as Error).message}`, state: 'see `fleet list`' }
  }
}

async function consoleLength(m: Machine): Promise<number> {
  return ((await remoteConsoleLog(m)) ?? '').replace(/\r/g, '').length
}

function healthOf(ctx: FleetContext, m: Machine, check: HealthCheck, opts: UpgradeOptions, mark: number) {
  return waitHealthy(ctx.paths, vmName(m.name), check, { timeoutS: opts.healthTimeoutS ?? 300, mark, log: ctx.log, uri: remoteHost(m)!.uri, readConsole: () => remoteConsoleLog(m) })
}
