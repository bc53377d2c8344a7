// Building a GPT disk inside a plain file, without loop devices or mounts: sfdisk writes the
// partition table, mkfs.fat and mkfs.ext4 write filesystems at byte offsets, mtools fills the
// FAT filesystem.
import { run } from './exec.js'

export const MiB = 1024 * 1024

export interface GptPartition {
  startMiB: number
  sizeMiB: number
  /** Partition type GUID. */
  type: string
  name: string
}

export async function writeGpt(raw: string, parts: GptPartition[]): Promise<void> {
  const sectors = (mib: number) => mib * (MiB / 512)
  const lines = ['label: gpt', 'unit: sectors', ...parts.map((p) => `start=${sectors(p.startMiB)}, size=${sectors(p.sizeMiB)}, type=${p.type}, name="${p.name}"`)]
  await run(['sfdisk'], ['--quiet', '--no-reread', '--no-tell-kernel', raw], { input: lines.join('\n') + '\n' })
}

/** A FAT32 filesystem in the partition at `startMiB` (FAT32 needs at least 260 MiB with 4 KiB clusters). */
export async function mkfsFat(raw: string, startMiB: number, sizeMiB: number, label: string): Promise<void> {
  await run(['mkfs.fat'], ['-F', '32', '--offset', String(startMiB * (MiB / 512)), '-n', label, raw, String(sizeMiB * 1024)])
}

/** Copies files into the FAT filesystem at `startMiB`, creating folders; `files` maps image path → host path. */
export async function fatCopy(raw: string, startMiB: number, files: Record<string, string>): Promise<void> {
  const image = `${raw}@@${startMiB * MiB}`
  const env = { MTOOLS_SKIP_CHECK: '1' }
  const dirs = new Set<string>()
  for (const dst of Object.keys(files)) {
    const parts = dst.split('/').filter(Boolean).slice(0, -1)
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'))
  }
  const sorted = [...dirs].sort((a, b) => a.split('/').length - b.split('/').length)
  if (sorted.length) await run(['mmd'], ['-i', image, ...sorted.map((d) => `::/${d}`)], { env })
  for (const [dst, src] of Object.entries(files)) await run(['mcopy'], ['-i', image, '-o', src, `::/${dst.replace(/^\//, '')}`], { env })
}

/** An ext4 filesystem at `startMiB`, populated from `dir` (owners, modes, xattrs kept). */
export async function mkfsExt4At(raw: string, startMiB: number, sizeMiB: number, label: string, dir: string, opts: { journal: boolean }): Promise<void> {
  const features = opts.journal ? [] : ['-O', '^has_journal']
  await run(['mkfs.ext4'], ['-q', '-F', '-L', label, ...features, '-E', `offset=${startMiB * MiB}`, '-d', dir, raw, `${sizeMiB}M`], { privileged: true })
}
