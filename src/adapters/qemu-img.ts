// qemu-img: overlays, /var disks, conversion, info (backing chains) and checks.
import { words } from '../util/env.js'
import { run, tryRun } from './exec.js'

const qemuImg = (): string[] => words(process.env.QEMU_IMG || 'qemu-img')

export interface ImageInfo {
  filename: string
  format: string
  virtualSize: number
  actualSize?: number
  backingFilename?: string
  backingFormat?: string
}

interface RawInfo {
  filename: string
  format: string
  'virtual-size': number
  'actual-size'?: number
  'full-backing-filename'?: string
  'backing-filename'?: string
  'backing-filename-format'?: string
}

function toInfo(r: RawInfo): ImageInfo {
  return {
    filename: r.filename,
    format: r.format,
    virtualSize: r['virtual-size'],
    actualSize: r['actual-size'],
    backingFilename: r['full-backing-filename'] ?? r['backing-filename'],
    backingFormat: r['backing-filename-format'],
  }
}

/** A qcow2 overlay of `backing` (itself qcow2). */
export async function createOverlay(file: string, backing: string): Promise<void> {
  await run(qemuImg(), ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', 'qcow2', file], { privileged: true })
}

export async function createQcow2(file: string, sizeBytes: number): Promise<void> {
  await run(qemuImg(), ['create', '-q', '-f', 'qcow2', file, String(sizeBytes)], { privileged: true })
}

export async function convert(src: string, srcFormat: string, dst: string, opts: { compress?: 'zstd' } = {}): Promise<void> {
  const extra = opts.compress ? ['-c', '-o', `compression_type=${opts.compress}`] : []
  await run(qemuImg(), ['convert', '-q', '-f', srcFormat, '-O', 'qcow2', ...extra, src, dst], { privileged: true })
}

/** Info of one image; `-U` so it also works while a VM holds the image lock. */
export async function info(file: string): Promise<ImageInfo> {
  const r = await run(qemuImg(), ['info', '-U', '--output=json', file])
  return toInfo(JSON.parse(r.stdout) as RawInfo)
}

/** The whole backing chain, the image itself first. */
export async function backingChain(file: string): Promise<ImageInfo[]> {
  const r = await run(qemuImg(), ['info', '-U', '--backing-chain', '--output=json', file])
  return (JSON.parse(r.stdout) as RawInfo[]).map(toInfo)
}

export async function check(file: string): Promise<{ ok: boolean; output: string }> {
  const r = await tryRun(qemuImg(), ['check', '-q', file])
  return { ok: r.exitCode === 0, output: (r.stdout + r.stderr).trim() }
}

/** True if some process (a running qemu) holds a write lock on the image. */
export async function isLocked(file: string): Promise<boolean> {
  const r = await tryRun(qemuImg(), ['info', '--force-share=off', '--output=json', file])
  return r.exitCode !== 0 && /lock/i.test(r.stderr)
}
