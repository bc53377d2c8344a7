// Images with the channels that point at them and the VMs whose real backing chain uses them.
import { isVmName } from '../name.js'
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
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

/** Digest → VMs, read from each VM's overlays (current and previous) with qemu-img. */
export async function imageUsers(paths: Paths): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>()
  if (!existsSync(paths.vms)) return users
  for (const e of await readdir(paths.vms, { withFileTypes: true })) {
    if (!e.isDirectory() || !isVmName(e.name)) continue
    const f = vmFiles(paths, e.name)
    for (const overlay of [f.boot, `${f.boot}.previous`]) {
      if (!existsSync(overlay)) continue
      for (const link of await qemuImg.backingChain(overlay)) {
        const d = digestOfPath(paths, link.filename)
        if (d) users.set(d, [...new Set([...(users.get(d) ?? []), e.name])])
      }
    }
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
