// fleet gc: delete images no VM's backing chain uses and no channel points at.
import { rm } from 'node:fs/promises'
import type { Paths } from '../repo.js'
import { listImageRows } from './image-list.js'

export interface GcResult {
  dryRun: boolean
  deleted: { digest: string; path: string; size: number }[]
  kept: { digest: string; reason: string }[]
}

export async function gc(paths: Paths, dryRun: boolean): Promise<GcResult> {
  const rows = await listImageRows(paths)
  const deleted: GcResult['deleted'] = []
  const kept: GcResult['kept'] = []
  for (const r of rows) {
    if (r.vms.length || r.channels.length) {
      kept.push({ digest: r.digest, reason: [r.channels.length ? `channel ${r.channels.join(', ')}` : '', r.vms.length ? `used by ${r.vms.join(', ')}` : ''].filter(Boolean).join('; ') })
      continue
    }
    if (!dryRun) await rm(r.path, { force: true })
    deleted.push({ digest: r.digest, path: r.path, size: r.size })
  }
  return { dryRun, deleted, kept }
}
