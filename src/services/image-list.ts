// Images with the channels that point at them and the VMs whose real backing chain uses them.
import { isVmName } from '../name.js'
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { listIntentTargets, readIntent } from '../ops/intent.js'
import * as qemuImg from '../adapters/qemu-img.js'
import { vmFiles, type Paths } from '../repo.js'
import { digestOfPath, listImages, readChannels } from '../store/images.js'

export interface ImageRow {
  digest: string
  path: string
  size: number
  virtualSize: number
  channels: string[]
  vms: string[]
}

/**
 * Digest → VMs that may boot from it: every overlay in vms/NAME/ (current, .previous, and an
 * in-flight .next or .swap), read from the overlay's own header, plus the images named by
 * interrupted operations' intent records. Store images stand alone, so one level is the chain.
 */
export async function imageUsers(paths: Paths): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>()
  const use = (d: string | undefined, who: string) => {
    if (d) users.set(d, [...new Set([...(users.get(d) ?? []), who])])
  }
  if (existsSync(paths.vms)) {
    for (const e of await readdir(paths.vms, { withFileTypes: true })) {
      if (!e.isDirectory() || !isVmName(e.name)) continue
      const f = vmFiles(paths, e.name)
      for (const file of await readdir(f.dir)) {
        if (!file.startsWith('boot.qcow2')) continue
        const inf = await qemuImg.info(join(f.dir, file)).catch(() => undefined)
        use(inf?.backingFilename && digestOfPath(paths, inf.backingFilename), e.name)
      }
    }
  }
  for (const target of await listIntentTargets(paths)) {
    const i = await readIntent(paths, target)
    const d = i?.data as { from?: unknown; to?: unknown } | undefined
    for (const v of [d?.from, d?.to]) if (typeof v === 'string') use(v, `${target} (interrupted ${i!.intent.op})`)
  }
  return users
}

export async function listImageRows(paths: Paths): Promise<ImageRow[]> {
  const [images, channels, users] = await Promise.all([listImages(paths), readChannels(paths), imageUsers(paths)])
  return images.map((i) => ({
    ...i,
    channels: Object.entries(channels).filter(([, c]) => c.digest === i.digest).map(([n]) => n),
    vms: users.get(i.digest) ?? [],
  }))
}
