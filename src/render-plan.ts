// Human rendering of a plan (plan and apply --dry-run).
import type { PlanResult } from './services/plan.js'

export function renderPlan(r: PlanResult): string[] {
  const out: string[] = []
  const w = Math.max(4, ...r.vms.map((v) => v.name.length))
  for (const v of r.vms) {
    out.push(`${v.name.padEnd(w)}  ${v.action.padEnd(8)}  ${v.detail}${v.interrupted ? ` (interrupted ${v.interrupted}: resolved first)` : ''}`)
    if (v.action === 'in-sync') continue
    for (const c of v.changes) out.push(`${' '.repeat(w)}    ${c.field}: ${c.from} → ${c.to} (${c.apply === 'live' ? 'applied live' : 'needs a restart'})`)
    const id = v.identity
    if (id && id.added.length + id.changed.length + id.removed.length) out.push(`${' '.repeat(w)}    identity: +[${id.added.join(' ')}] ~[${id.changed.join(' ')}] -[${id.removed.join(' ')}]`)
  }
  const s = r.summary
  const n = (k: keyof typeof s) => s[k] ?? 0
  out.push(`Plan: ${n('create')} to create, ${n('define') + n('redefine')} to (re)define, ${n('upgrade')} to upgrade, ${n('orphan')} orphan(s), ${n('foreign')} foreign, ${n('broken')} broken; ${n('in-sync')} in sync.`)
  return out
}
