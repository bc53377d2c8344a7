// The image store: images/<sha256>.qcow2, read-only and never overwritten, plus channels
// (images/channels.json) that point at one digest each and remember the ones before.
import { existsSync } from 'node:fs'
import { chmod, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import * as qemuImg from '../adapters/qemu-img.js'
import { UserError } from '../errors.js'
import type { Arch } from '../machines/model.js'
import type { Paths } from '../repo.js'
import { copyHashing, sha256File, writeFileAtomic } from '../util/fsx.js'
import { loadChannelsFile } from './channels-file.js'
import { parseQcow2Header, readImageHead, refuseHeader } from './qcow2-header.js'
import { withLock } from '../util/lock.js'

export interface Channel {
  digest: string
  updated: string
  /** Digests this channel pointed at before, newest first. */
  previous: string[]
}
export type Channels = Record<string, Channel>

export interface StoredImage {
  digest: string
  path: string
  size: number
  virtualSize: number
}

export const DIGEST = /^[0-9a-f]{64}$/

export function imagePath(paths: Paths, digest: string): string {
  return join(paths.images, `${digest}.qcow2`)
}

/** The digest of an image path inside the store, or undefined for any other file. */
export function digestOfPath(paths: Paths, file: string): string | undefined {
  const m = /^([0-9a-f]{64})\.qcow2$/.exec(basename(file))
  return m && file.startsWith(paths.images) ? m[1] : undefined
}

export function channelsFile(paths: Paths): string {
  return join(paths.images, 'channels.json')
}

/** channels.json, checked entry by entry (a corrupt file is exit 2 naming it); keys never hit prototypes. */
export async function readChannels(paths: Paths): Promise<Channels> {
  return loadChannelsFile<Channel>(channelsFile(paths))
}

/**
 * A channel holds one image per guest architecture. In channels.json the x86_64 image sits
 * under the plain name and others under NAME@ARCH ('@' is never part of a channel name).
 */
export function channelKey(channel: string, arch: Arch = 'x86_64'): string {
  return arch === 'x86_64' ? channel : `${channel}@${arch}`
}

/** Channel name and architecture of a channels.json key. */
export function parseChannelKey(key: string): { channel: string; arch: Arch } {
  const at = key.lastIndexOf('@')
  return at < 0 ? { channel: key, arch: 'x86_64' } : { channel: key.slice(0, at), arch: key.slice(at + 1) as Arch }
}

/** Resolves a channel to its current image for `arch`; a clear error when it does not exist. */
export async function resolveChannel(paths: Paths, channel: string, forMachine?: string, arch: Arch = 'x86_64'): Promise<StoredImage> {
  const c = (await readChannels(paths))[channelKey(channel, arch)]
  const who = forMachine ? `machine ${forMachine}: ` : ''
  if (!c) {
    const archFlag = arch === 'x86_64' ? '' : ` --arch ${arch}`
    throw new UserError(`${who}base channel "${channel}" has no ${arch} image in ${paths.images}`,
      `Build one with \`fleet build --channel ${channel}${archFlag}\` or import one with \`fleet image import FILE --channel ${channel}${archFlag}\`.`)
  }
  const p = imagePath(paths, c.digest)
  if (!existsSync(p)) throw new UserError(`${who}channel "${channel}" points at ${c.digest}, but ${p} is missing`)
  const st = await stat(p)
  // From the header fleet verified on import: no qemu-img per VM when a batch creates many.
  const head = await readHeader(p)
  const virtualSize = head.length >= 32 && head.readUInt32BE(0) === 0x514649fb ? Number(head.readBigUInt64BE(24)) : (await qemuImg.info(p)).virtualSize
  return { digest: c.digest, path: p, size: st.size, virtualSize }
}

/**
 * Checks that a file is a standalone qcow2 fit to be a base image, reading it as untrusted: the
 * header is parsed here first (no backing name, external data file, encryption, corrupt or unknown
 * feature), then `qemu-img info -f qcow2` and `qemu-img check -f qcow2` (the format is never probed).
 * Call it on the copy inside the store, before it is renamed into place; `shownAs` names the
 * file the user gave in messages.
 */
export async function verifyBaseImage(file: string, shownAs = file): Promise<qemuImg.ImageInfo> {
  const refuse = (why: string, hint?: string): never => {
    throw new UserError(`image ${shownAs} refused: it ${why}`, hint ?? 'Import a standalone qcow2 image (`qemu-img convert -O qcow2 IN OUT` writes one).')
  }
  const head = await readImageHead(file)
  if (typeof head === 'string') return refuse(head)
  const header = parseQcow2Header(head)
  if (typeof header === 'string') {
    return refuse(header, header.startsWith('is raw')
      ? `If it is a raw disk, convert it yourself, naming the format: qemu-img convert -f raw -O qcow2 ${shownAs} out.qcow2`
      : `Convert it: qemu-img convert -f FORMAT -O qcow2 ${shownAs} out.qcow2`)
  }
  const bad = refuseHeader(header)
  if (bad) return refuse(bad)
  const inf = await qemuImg.inspect(file, 'qcow2')
  if (typeof inf === 'string') return refuse(`cannot be read as qcow2: ${inf}`)
  if (inf.format !== 'qcow2') refuse(`is ${inf.format}, not qcow2`)
  if (inf.backingFilename) refuse(`has a backing file ${JSON.stringify(inf.backingFilename)}; a base image must stand alone`)
  if (inf.dataFile) refuse(`keeps its data in an external data file ${JSON.stringify(inf.dataFile)}`)
  if (inf.encrypted) refuse('is encrypted; a base image must be readable without a secret')
  if (inf.corrupt) refuse('is marked corrupt by qemu')
  const chk = await qemuImg.check(file, 'qcow2')
  if (!chk.ok) refuse(`fails qemu-img check: ${chk.output.split('\n').slice(0, 4).join('; ')}`, `Repair a copy with \`qemu-img check -r all -f qcow2 COPY\`, or rebuild the image.`)
  return inf
}

/** The store digest an overlay is backed by (from its real backing file), if it is a store image. */
export async function overlayBaseDigest(paths: Paths, overlay: string): Promise<string | undefined> {
  const backing = await overlayBackingFile(overlay)
  return (backing && digestOfPath(paths, backing)) || undefined
}

/**
 * The backing file name an overlay records, read from its qcow2 header in-process: `fleet list`
 * and `fleet plan` read every VM's overlay and must not start a qemu-img per VM. A header fleet
 * cannot parse is left to qemu-img.
 */
export async function overlayBackingFile(overlay: string): Promise<string | undefined> {
  const h = parseQcow2Header(await readHeader(overlay))
  if (typeof h !== 'string') return h.backingFile
  return (await qemuImg.info(overlay)).backingFilename
}

/** The first 64 KiB of an image fleet made or verified (the header and the backing name live there). */
async function readHeader(file: string): Promise<Buffer> {
  const fh = await open(file, 'r')
  try {
    const buf = Buffer.alloc(64 * 1024)
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/** Every stored image with its size. */
export async function listImages(paths: Paths): Promise<StoredImage[]> {
  if (!existsSync(paths.images)) return []
  const out: StoredImage[] = []
  for (const f of (await readdir(paths.images)).sort()) {
    const m = /^([0-9a-f]{64})\.qcow2$/.exec(f)
    if (!m) continue
    const p = join(paths.images, f)
    const [st, inf] = await Promise.all([stat(p), qemuImg.info(p)])
    out.push({ digest: m[1]!, path: p, size: st.size, virtualSize: inf.virtualSize })
  }
  return out
}
