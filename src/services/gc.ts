// fleet gc: delete images no VM may boot from and no channel points at, under the store's
// exclusive lock (no import, build or overlay creation runs meanwhile) and an intent record.
import type { Paths } from '../repo.js'
import { beginIntent, STORE_TARGET } from '../ops/intent.js'
import { withStore } from '../ops/vm-op.js'
import { recoverStore } from '../store/import.js'
import { unlinkDurable } from '../util/fsx.js'
import { step } from '../util/interrupt.js'
import { listImageRows } from './image-list.js'

export interface GcResult {
  dryRun: boolean
  deleted: { digest: string; path: string; size: number }[]
  kept: { digest: string; reason: string }[]
}

export async function gc(ctx: { paths: Paths; log: (l: string) => void }, dryRun: boolean): Promise<GcResult> {
  return withStore(ctx, dryRun ? 'shared' : 'exclusive', async () => {
    if (!dryRun) await recoverStore(ctx)
    const rows = await listImageRows(ctx.paths)
    const deleted: GcResult['deleted'] = []
    const kept: GcResult['kept'] = []
    for (const r of rows) {
      if (r.vms.length || r.channels.length) {
        kept.push({ digest: r.digest, reason: [r.channels.length ? `channel ${r.channels.join(', ')}` : '', r.vms.length ? `used by ${r.vms.join(', ')}` : ''].filter(Boolean).join('; ') })
      } else deleted.push({ digest: r.digest, path: r.path, size: r.size })
    }
    if (dryRun || !deleted.length) return { dryRun, deleted, kept }
    // Each delete stands alone; an interrupted gc is simply run again.
    const intent = await beginIntent(ctx.paths, STORE_TARGET, 'gc', 'deleting', { digests: deleted.map((d) => d.digest) })
    for (const d of deleted) {
      step('gc:delete')
      await unlinkDurable(d.path)
    }
    await intent.done()
    return { dryRun, deleted, kept }
  })
}
