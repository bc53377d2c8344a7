// What an upgrade plans and reports per VM, its options, and the order of its waves.
import type { VmName } from '../name.js'
import type { HealthCheck } from './health.js'
import type { IdentityDiff } from './identity-manifest.js'

export interface UpgradePlan {
  name: VmName
  baseFrom: string
  baseTo: string
  identity: IdentityDiff
  xmlChanged: boolean
  xmlDiff: string[]
  wasRunning: boolean
}

/** `rolled back`: upgraded, failed its health check, back on its old image. `not started`: the rollout stopped first. */
export type UpgradeOutcome = 'upgraded' | 'unchanged' | 'failed' | 'rolled back' | 'not started' | 'would upgrade'

export interface UpgradeVmResult extends UpgradePlan {
  outcome: UpgradeOutcome
  restarted: boolean
  /** Why it failed, and the state it was left in. */
  error?: string
  state?: string
  /** The image (digest) it boots from at the end. */
  image: string
  /** 1, 2…: running VMs in waves; stopped VMs in the last one. Absent when there was nothing to do. */
  wave?: number
  /** Its health check after its restart (absent: not restarted, so not checked). */
  healthy?: boolean
  health?: string
}

export interface UpgradeResult {
  dryRun: boolean
  vms: UpgradeVmResult[]
  timings: Record<string, number>
  health: string
  maxUnavailable: number
  /** Why the rollout stopped before the end (absent: it ran to the end). */
  stopped?: string
}

export interface UpgradeOptions {
  all: boolean
  /** Seconds to wait for an ACPI shutdown; then --force powers off, else that VM fails. */
  timeoutS: number
  force: boolean
  /** At most this many running VMs down at once (default 1). */
  maxUnavailable?: number
  /** Checked on every VM the upgrade restarts (default: the guest agent). */
  health?: HealthCheck
  /** Seconds a restarted VM has to pass its check (default 300). */
  healthTimeoutS?: number
  /** Rollback points each upgraded VM keeps, .previous included (default 2). */
  keep?: number
}

/** A result is bad when it did not end upgraded or unchanged, or came back unhealthy: exit 3. */
export const upgradeFailed = (v: UpgradeVmResult): boolean => (v.outcome !== 'upgraded' && v.outcome !== 'unchanged' && v.outcome !== 'would upgrade') || v.healthy === false

/** Running VMs needing work in waves of `n` (by name), then the stopped ones in one last wave. */
export function waves<T extends { plan: UpgradePlan }>(todo: T[], n: number): T[][] {
  const running = todo.filter((p) => p.plan.wasRunning).sort((a, b) => (a.plan.name < b.plan.name ? -1 : 1))
  const out: T[][] = []
  for (let i = 0; i < running.length; i += n) out.push(running.slice(i, i + n))
  const stopped = todo.filter((p) => !p.plan.wasRunning)
  if (stopped.length) out.push(stopped)
  return out
}
