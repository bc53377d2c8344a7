// The health gate of a wave of local upgrades (upgrade.ts), and what the upgrade knows of each VM.
import type { Machine } from '../machines/model.js'
import type { IntentHandle } from '../ops/intent.js'
import type { UpgradeData } from '../ops/recovery.js'
import type { VmFiles } from '../repo.js'
import type { FleetContext } from './context.js'
import { describeHealth, waitHealthy, type HealthCheck } from './health.js'
import { rollbackLocked } from './rollback.js'
import type { UpgradePlan, UpgradeVmResult } from './upgrade-plan.js'

export interface Planned {
  plan: UpgradePlan
  machine: Machine
  files: VmFiles
  identity: Map<string, Buffer>
  xml: string
  oldXml: string | null
  image: string
  intent?: IntentHandle<UpgradeData>
  result?: UpgradeVmResult
  /** Console log offset taken while the VM was off, before its restart. */
  mark?: number
  wave?: number
}


/**
 * The health gate of one wave: every VM it restarted must pass `check`. One that does not is
 * rolled back to the overlay it had (when the upgrade made a new one), restarted, and checked
 * again: a rollback only counts as done when the VM it left behind is healthy too.
 */
export async function checkWave(ctx: FleetContext, wave: Planned[], check: HealthCheck, opts: { timeoutS: number; healthTimeoutS: number }): Promise<void> {
  await Promise.all(wave.filter((p) => p.result?.outcome === 'upgraded' && p.result.restarted).map(async (p) => {
    const name = p.plan.name
    ctx.log(`${name}: health check (${describeHealth(check)}, up to ${opts.healthTimeoutS}s)`)
    const h = await waitHealthy(ctx.paths, name, check, { timeoutS: opts.healthTimeoutS, mark: p.mark ?? 0, log: ctx.log })
    p.result = { ...p.result!, healthy: h.healthy, health: h.detail }
    ctx.log(`${name}: ${h.healthy ? 'healthy' : 'UNHEALTHY'} after ${h.seconds}s (${h.detail})`)
    if (h.healthy) return
    if (!p.plan.baseFrom || p.plan.baseFrom === p.plan.baseTo || !p.intent?.data.newOverlay) {
      p.result = { ...p.result!, outcome: 'failed', error: `unhealthy after the upgrade: ${h.detail}`, state: `on ${p.plan.baseTo.slice(0, 12)}, not rolled back: this upgrade changed only identity or XML, so there is no older overlay of its own to go back to` }
      return
    }
    ctx.log(`${name}: rolling back to ${p.plan.baseFrom.slice(0, 12)}`)
    try {
      const rb = await rollbackLocked(ctx, name, { xmlTo: p.oldXml ?? undefined, restart: true, stopTimeoutS: opts.timeoutS })
      const again = await waitHealthy(ctx.paths, name, check, { timeoutS: opts.healthTimeoutS, mark: rb.consoleMark, log: ctx.log })
      ctx.log(`${name}: back on ${rb.baseTo.slice(0, 12)}, ${again.healthy ? 'healthy' : 'STILL UNHEALTHY'} after ${again.seconds}s (${again.detail})`)
      p.result = {
        ...p.result!, outcome: 'rolled back', image: rb.baseTo, healthy: again.healthy, health: again.detail,
        error: `unhealthy on ${p.plan.baseTo.slice(0, 12)}: ${h.detail}`,
        state: `rolled back to ${rb.baseTo.slice(0, 12)}, running, ${again.healthy ? 'healthy' : `unhealthy there too: ${again.detail}`}`,
      }
    } catch (e) {
      p.result = { ...p.result!, outcome: 'failed', healthy: false, error: `unhealthy after the upgrade (${h.detail}); the rollback failed: ${(e as Error).message}`, state: `see \`fleet list\`; \`fleet repair\` finishes an interrupted rollback` }
    }
  }))
}

