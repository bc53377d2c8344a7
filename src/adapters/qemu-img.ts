// qemu-img: overlays, /var disks, conversion, info (backing chains) and checks.
import { ToolError } from '../errors.js'
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

/** qemu-img convert; with `onPercent`, its own progress (-p: "(42.00/100%)") is passed on as it comes. */
export async function convert(src: string, srcFormat: string, dst: string, opts: { compress?: 'zstd'; onPercent?: (p: number) => void } = {}): Promise<void> {
  const extra = opts.compress ? ['-c', '-o', `compression_type=${opts.compress}`] : []
  const onPercent = opts.onPercent
  const onStdout = onPercent ? (chunk: string) => {
    const all = [...chunk.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)]
    const last = all.at(-1)
    if (last) onPercent(Number(last[1]))
  } : undefined
  await run(qemuImg(), ['convert', onPercent ? '-p' : '-q', '-f', srcFormat, '-O', 'qcow2', ...extra, src, dst], { privileged: true, onStdout })
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

export async function check(file: string, format?: string): Promise<{ ok: boolean; output: string }> {
  const r = await tryRun(qemuImg(), ['check', '-q', ...(format ? ['-f', format] : []), file], { timeoutMs: format ? 300_000 : undefined })
  return { ok: r.exitCode === 0, output: (r.stdout + r.stderr).trim() }
}

/** What `info -f FORMAT` says about an untrusted image: the format is forced, never probed. */
export interface StrictInfo extends ImageInfo {
  dataFile?: string
  encrypted: boolean
  corrupt: boolean
}

/** Info of an untrusted image read as `format`, or qemu-img's message when it cannot be read so. */
export async function inspect(file: string, format: string): Promise<StrictInfo | string> {
  const r = await tryRun(qemuImg(), ['info', '-f', format, '--output=json', file], { timeoutMs: 60_000 })
  if (r.exitCode !== 0) return (r.stderr || r.stdout).trim()
  const raw = JSON.parse(r.stdout) as RawInfo & { 'format-specific'?: { data?: { 'data-file'?: string; encrypt?: unknown; corrupt?: boolean } } }
  const data = raw['format-specific']?.data ?? {}
  return { ...toInfo(raw), dataFile: data['data-file'], encrypted: data.encrypt !== undefined, corrupt: data.corrupt === true }
}

/** qemu-img's answer when another process (a running qemu, a guestfish appliance) holds the image writable. */
const HELD = /Failed to get (shared )?"write" lock|Is another process using the image/

/**
 * True if some process holds the image open read-write. `info` without `-U` asks for the shared
 * locks a reader needs, which qemu refuses while a writer holds the image; other failures (no such
 * file, not an image) are tool errors, never a silent "not locked".
 */
export async function isLocked(file: string): Promise<boolean> {
  const args = ['info', '--output=json', file]
  const r = await tryRun(qemuImg(), args)
  if (r.exitCode === 0) return false
  if (HELD.test(r.stderr)) return true
  throw new ToolError(qemuImg().join(' '), args, r.exitCode, r.stderr || r.stdout)
}

/** Names of the internal snapshots of a qcow2 (`-U`: also while a VM holds it). */
export async function snapshots(file: string): Promise<string[]> {
  const r = await run(qemuImg(), ['info', '-U', '--output=json', file])
  return ((JSON.parse(r.stdout) as { snapshots?: { name: string }[] }).snapshots ?? []).map((s) => s.name)
}

/** Creates (-c), reverts the image to (-a) or deletes (-d) an internal snapshot; needs the write lock. */
export async function snapshot(op: 'create' | 'apply' | 'delete', file: string, name: string): Promise<void> {
  const flag = { create: '-c', apply: '-a', delete: '-d' }[op]
  await run(qemuImg(), ['snapshot', '-q', flag, name, file], { privileged: true })
}

/** The first `bytes` of the image's content, as the guest sees them (qemu-img dd into `out`). */
export async function readHead(file: string, bytes: number, out: string): Promise<void> {
  await run(qemuImg(), ['dd', '-U', '-f', 'qcow2', '-O', 'raw', `if=${file}`, `of=${out}`, `bs=${bytes}`, 'count=1'], { privileged: true })
}
