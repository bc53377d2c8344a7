// fleet plan --kubevirt DIR: how a previous `fleet export kubevirt` folder differs from what an
// export would write now (machines/, the channels, the identities). The registry is the one the
// folder's VirtualMachines name; Secret values are shown as digests only.
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { UserError } from '../errors.js'
import type { FleetContext } from './context.js'
import { exportDiff, planExport, readIfThere } from './export-kubevirt.js'

export interface KubevirtDrift {
  name: string
  /** changed/in-sync: against DIR/NAME.json; not-exported: no such file; orphan: a file with no machines/NAME. */
  status: 'in-sync' | 'changed' | 'not-exported' | 'orphan'
  file: string
  diff: string[]
}

/** The registry a previous export used, read from a VirtualMachine's containerDisk reference. */
function registryOf(text: string | undefined): string | undefined {
  const m = text && /"image": "([^"]+)\/fleet-base:sha256-[0-9a-f]{64}"/.exec(text)
  return m ? m[1] : undefined
}

export async function kubevirtDrift(ctx: FleetContext, names: readonly string[], dir: string): Promise<KubevirtDrift[]> {
  if (!existsSync(dir)) throw new UserError(`--kubevirt ${dir}: no such folder`, 'Give the --out folder of an earlier `fleet export kubevirt`.')
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort()
  const texts = new Map(await Promise.all(files.map(async (f) => [f.slice(0, -5), await readIfThere(join(dir, f))] as const)))
  const registry = [...texts.values()].map(registryOf).find(Boolean)
  if (!registry) {
    throw new UserError(`--kubevirt ${dir}: no exported VirtualMachine there (no NAME.json naming a fleet-base image)`,
      'Export first: `fleet export kubevirt --registry REGISTRY --out DIR`.')
  }
  const planned = await planExport(ctx, names, registry, dir)
  const out: KubevirtDrift[] = await Promise.all(planned.map(async (p) => {
    const file = join(dir, `${p.machine.name}.json`)
    const old = texts.get(p.machine.name)
    const status = old === undefined ? 'not-exported' : old === p.text ? 'in-sync' : 'changed'
    return { name: p.machine.name, status, file, diff: await exportDiff(old, p.text, file) }
  }))
  if (!names.length) {
    const known = new Set(out.map((d) => d.name))
    for (const [n, text] of texts) if (!known.has(n) && registryOf(text)) out.push({ name: n, status: 'orphan', file: join(dir, `${n}.json`), diff: [] })
  }
  return out
}

/** Lines for people: one per machine, the redacted diff under each that changed. */
export function renderDrift(dir: string, drift: KubevirtDrift[]): string[] {
  const w = Math.max(4, ...drift.map((d) => d.name.length))
  const what = {
    'in-sync': 'in sync', changed: 'changed: re-export, then kubectl apply', 'not-exported': 'not exported yet',
    orphan: 'exported, but no machines/ folder: kubectl delete -f it',
  }
  const lines = [`KubeVirt export ${dir}:`]
  for (const d of drift) {
    lines.push(`${d.name.padEnd(w)}  ${what[d.status]}`)
    if (d.status === 'changed') lines.push(...d.diff.map((l) => `  ${l}`))
  }
  return lines
}
