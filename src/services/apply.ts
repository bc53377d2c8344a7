// fleet apply: carries out the plan in one process, each VM through the same service as its
// single command (create-vm, define-vm, upgrade, destroy-vm), so each gets that command's lock,
// intent record, undo and recovery; every service checks its VM again under its lock, so a plan
// made stale by another admin is refused per VM rather than acted on.
// Order: creates, defines and redefines, upgrades (one upgrade run for all of them), then orphans
// — those only after the admin said yes, and never their /var disk.
import { UserError } from '../errors.js'
import { vmName } from '../name.js'
import { anyFailed, BATCH_CONCURRENCY, eachVm } from './batch.js'
import type { FleetContext } from './context.js'
import { createVm, withCreateBatch } from './create-vm.js'
import { defineVm, destroyVm, redefineVm } from './lifecycle.js'
import { planFleet, type PlanAction, type PlanEntry, type PlanResult } from './plan.js'
import { upgrade, upgradeFailed, type UpgradeOptions } from './upgrade.js'

export type ApplyOutcome = 'created' | 'defined' | 'redefined' | 'upgraded' | 'destroyed' | 'unchanged' | 'skipped' | 'failed' | 'would apply'

export interface ApplyVmResult {
  name: string
  action: PlanAction
  outcome: ApplyOutcome
  detail: string
  restarted?: boolean
  /** A running VM left on its old configuration until its next restart (--no-restart). */
  restartPending?: boolean
  error?: string
}

export interface ApplyResult {
  dryRun: boolean
  plan: PlanResult
  vms: ApplyVmResult[]
  timings: Record<string, number>
}

export interface ApplyOptions {
  /** Destroying orphans was confirmed (--yes, or the admin answered). */
  confirm: (orphans: PlanEntry[]) => Promise<boolean>
  restart: boolean
  start: boolean
  timeoutS: number
  force: boolean
  /** Passed to the upgrade: waves, health check, rollback points (upgrade's defaults otherwise). */
  rolling?: Pick<UpgradeOptions, 'maxUnavailable' | 'health' | 'healthTimeoutS' | 'keep'>
}

export async function applyFleet(ctx: FleetContext, names: readonly string[], opts: ApplyOptions): Promise<ApplyResult> {
  const timings: Record<string, number> = {}
  let t0 = performance.now()
  const plan = await planFleet(ctx, names)
  timings.plan = Math.round(performance.now() - t0)
  const of = (a: PlanAction) => plan.vms.filter((v) => v.action === a && v.pending)
  if (ctx.dryRun) return { dryRun: true, plan, timings, vms: plan.vms.map((v) => ({ name: v.name, action: v.action, outcome: v.pending ? 'would apply' : 'unchanged', detail: v.detail })) }
  const orphans = of('orphan')
  // Asked before anything changes, so a "no" leaves the host exactly as planned.
  if (orphans.length && !(await opts.confirm(orphans))) {
    throw new UserError(`not applied: destroying ${orphans.map((o) => o.name).join(', ')} was not confirmed; nothing was changed`,
      `Pass --yes to confirm, or name the machines to apply (\`fleet apply NAME...\`) to leave the orphans alone.`)
  }
  const results = new Map<string, ApplyVmResult>()
  const done = (v: PlanEntry, r: Partial<ApplyVmResult> & { outcome: ApplyOutcome }) => results.set(v.name, { name: v.name, action: v.action, detail: v.detail, ...r })
  for (const v of plan.vms) {
    if (!v.pending) done(v, { outcome: 'unchanged' })
    else if (v.action === 'foreign' || v.action === 'broken') done(v, { outcome: 'skipped' })
  }
  const record = (list: PlanEntry[], outcomes: { name: string; outcome: string; error?: string; result?: Partial<ApplyVmResult> }[], ok: ApplyOutcome) => {
    for (const o of outcomes) {
      const v = list.find((x) => x.name === o.name)!
      done(v, o.outcome === 'ok' ? { outcome: ok, ...o.result } : { outcome: 'failed', error: o.error })
    }
  }

  t0 = performance.now()
  const creates = of('create')
  // Several at once, each under its own lock and undo; progress lines name their VM.
  record(creates, await withCreateBatch(ctx.paths, (batch) => eachVm(creates.map((v) => vmName(v.name)), async (n) => {
    const r = await createVm({ ...ctx, log: (l) => ctx.log(`${n}: ${l}`) }, n, { given: {}, yes: true }, { start: opts.start }, batch)
    return { restarted: false, ...(r.started ? { detail: 'created and started' } : {}) }
  }, ctx.log, BATCH_CONCURRENCY)), 'created')
  timings.create = Math.round(performance.now() - t0)

  t0 = performance.now()
  const defines = of('define')
  record(defines, await eachVm(defines.map((v) => vmName(v.name)), async (n) => {
    await defineVm(ctx, n)
    return {}
  }, ctx.log), 'defined')
  const redefines = of('redefine')
  record(redefines, await eachVm(redefines.map((v) => vmName(v.name)), async (n) => {
    const r = await redefineVm(ctx, n, { restart: opts.restart, timeoutS: opts.timeoutS, force: opts.force })
    return { restarted: r.restarted, restartPending: r.restartPending }
  }, ctx.log), 'redefined')
  timings.redefine = Math.round(performance.now() - t0)

  t0 = performance.now()
  const upgrades = of('upgrade')
  if (upgrades.length) {
    try {
      const r = await upgrade(ctx, upgrades.map((v) => v.name), { all: false, timeoutS: opts.timeoutS, force: opts.force, ...opts.rolling })
      for (const u of r.vms) {
        const v = upgrades.find((x) => x.name === u.name)
        if (!v) continue
        // A rolling upgrade also ends VMs rolled back (unhealthy) or not started (the rollout stopped).
        done(v, upgradeFailed(u) ? { outcome: 'failed', error: `${u.outcome}: ${u.error ?? 'the rollout stopped first'} (${u.state ?? `on ${u.image.slice(0, 12)}`})` } : { outcome: u.outcome === 'upgraded' ? 'upgraded' : 'unchanged', restarted: u.restarted })
      }
    } catch (e) {
      // upgrade refuses named VMs it cannot plan before changing anything: all of them failed.
      if (!(e instanceof UserError)) throw e
      for (const v of upgrades) done(v, { outcome: 'failed', error: e.message })
    }
  }
  timings.upgrade = Math.round(performance.now() - t0)

  t0 = performance.now()
  record(orphans, await eachVm(orphans.map((v) => vmName(v.name)), async (n) => {
    const r = await destroyVm(ctx, n, { deleteData: false, timeoutS: opts.timeoutS })
    return { detail: `removed ${r.removed.join(', ') || 'nothing'}${r.kept.length ? `; kept ${r.kept.join(', ')}` : ''}` }
  }, ctx.log), 'destroyed')
  timings.orphans = Math.round(performance.now() - t0)

  const vms = plan.vms.map((v) => results.get(v.name) ?? { name: v.name, action: v.action, outcome: 'failed' as const, detail: v.detail, error: 'bug: not applied' })
  return { dryRun: false, plan, vms, timings }
}

export const applyFailed = (r: ApplyResult) => anyFailed(r.vms)
