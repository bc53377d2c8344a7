// fleet repair: every interrupted operation and crash leftover in the repository and the state
// directory, shown (--dry-run) or resolved — the same recovery every command runs for the VMs
// it touches, for all of them at once.
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { isVmName, type VmName } from '../name.js'
import type { FleetContext } from '../services/context.js'
import { recoverStore } from '../store/import.js'
import { listIntentTargets, readIntent, STORE_TARGET } from './intent.js'
import { recoverVm, withStore, withVmLocks } from './vm-op.js'

export interface RepairItem {
  target: string
  /** The interrupted operation, if an intent record names one. */
  op?: string
  phase?: string
  actions: string[]
}

export interface RepairResult {
  dryRun: boolean
  items: RepairItem[]
}

/** VMs with an intent record or a half-written definition left in machines/. */
async function vmsToCheck(ctx: FleetContext): Promise<VmName[]> {
  const names = new Set<VmName>()
  for (const t of await listIntentTargets(ctx.paths)) {
    const n = t.startsWith('vm-') ? t.slice(3) : ''
    if (isVmName(n)) names.add(n)
  }
  if (existsSync(ctx.paths.machines)) {
    for (const f of await readdir(ctx.paths.machines)) {
      const m = /^\.(.+)\.new-/.exec(f)
      if (m && isVmName(m[1]!)) names.add(m[1]!)
    }
  }
  return [...names].sort()
}

export async function repair(ctx: FleetContext): Promise<RepairResult> {
  const items: RepairItem[] = []
  for (const name of await vmsToCheck(ctx)) {
    const i = await readIntent(ctx.paths, `vm-${name}`)
    const item: RepairItem = { target: `machine ${name}`, op: i?.intent.op, phase: i?.intent.phase, actions: [] }
    if (ctx.dryRun) item.actions.push(i ? `would ${['create'].includes(i.intent.op) ? 'roll back' : 'finish or roll back'} the interrupted ${i.intent.op}` : 'would remove a half-written definition')
    else item.actions.push(...await withVmLocks(ctx, [name], () => recoverVm(ctx, name)))
    items.push(item)
  }
  const si = await readIntent(ctx.paths, STORE_TARGET)
  if (ctx.dryRun) {
    if (si) items.push({ target: 'image store', op: si.intent.op, phase: si.intent.phase, actions: [`would roll back the interrupted ${si.intent.op}`] })
  } else {
    const actions = await withStore(ctx, 'exclusive', () => recoverStore(ctx))
    if (actions.length) items.push({ target: 'image store', op: si?.intent.op, phase: si?.intent.phase, actions })
  }
  return { dryRun: ctx.dryRun, items }
}
