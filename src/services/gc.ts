// fleet gc: delete images no VM may boot from and no channel points at, under the store's
// exclusive lock (no import, build or overlay creation runs meanwhile) and an intent record.
import type { Paths } from '../repo.js'
import { beginIntent, STORE_TARGET } from '../ops/intent.js'
import { withStore } from '../ops/vm-op.js'
import { recoverStore } from '../store/import.js'
import { unlinkDurable } from '../util/fsx.js'
import { step } from '../util/interrupt.js'
import { listImageRows } from './image-list.js'
import { hostLabel, isRemote, vmHost } from '../hosts/host-uri.js'
import { loadAllMachines } from '../machines/repository.js'
import { readChannels } from '../store/images.js'
import { gcHost } from './remote-disks.js'

export interface GcResult {
  dryRun: boolean
  deleted: { digest: string; path: string; size: number }[]
  kept: { digest: string; reason: string }[]
  /** Remote libvirt hosts: base volumes in fleet's pool there that no boot overlay there uses. */
  hosts: HostGc[]
}

export interface HostGc {
  host: string
  deleted: string[]
  error?: string
}

/** Per remote host of the machines: its unused base volumes (channel images kept, so they need no new upload). */
async function gcHosts(paths: Paths, dryRun: boolean): Promise<HostGc[]> {
  const uris = new Set((await loadAllMachines(paths)).map((m) => m.host).filter((h): h is string => Boolean(h)))
  const keep = new Set(Object.values(await readChannels(paths)).map((c) => c.digest))
  const out: HostGc[] = []
  for (const uri of uris) {
    const h = vmHost(uri)
    if (!isRemote(h)) continue
    try {
      out.push({ host: hostLabel(h), deleted: await gcHost(h, keep, dryRun) })
    } catch (e) {
      out.push({ host: hostLabel(h), deleted: [], error: (e as Error).message.split('\n')[0] })
    }
  }
  return out
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
    const hosts = await gcHosts(ctx.paths, dryRun)
    if (dryRun || !deleted.length) return { dryRun, deleted, kept, hosts }
    // Each delete stands alone; an interrupted gc is simply run again.
    const intent = await beginIntent(ctx.paths, STORE_TARGET, 'gc', 'deleting', { digests: deleted.map((d) => d.digest) })
    for (const d of deleted) {
      step('gc:delete')
      await unlinkDurable(d.path)
    }
    await intent.done()
    return { dryRun, deleted, kept, hosts }
  })
}
