// A KubeVirt containerDisk as an OCI archive (`skopeo copy oci-archive:FILE docker://...`): a tar
// of an OCI image layout (oci-layout, index.json, blobs/sha256/...) whose image has one layer
// holding /disk/<file>.qcow2 owned 107:107 (KubeVirt's qemu user). Written in Node without a
// container daemon or a staging copy: the qcow2 (several GB) is streamed twice — once to learn the
// layer's digest (it names the blob, and tar puts names before data), once into the archive — and
// never held in memory. Every timestamp is 0, so the same disk gives the same bytes: a re-run
// writes nothing new and the registry sees the same digests.
import { createHash, type Hash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { UserError } from '../errors.js'
import type { Arch } from '../machines/model.js'
import { tarHeader, tarPadding, ustar } from '../services/ustar.js'
import { childCancelSignal } from '../util/interrupt.js'

/** KubeVirt runs qemu as uid/gid 107 and reads the disk as that user. */
export const QEMU_UID = 107

export interface ContainerDiskSpec {
  /** The qcow2 to ship, e.g. a store image. */
  source: string
  /** Its sha256 if known (a store image's name): checked while streaming, a changed file is refused. */
  sha256?: string
  /** The file name under /disk/. */
  fileName: string
  arch: Arch
  /** The tag (org.opencontainers.image.ref.name) in index.json. */
  tag: string
}

export interface ContainerDiskLayout {
  layerDigest: string
  layerSize: number
  configDigest: string
  manifestDigest: string
  /** The archive's exact size (known before it is written). */
  archiveSize: number
}

const LAYER = 'application/vnd.oci.image.layer.v1.tar'
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const CONFIG = 'application/vnd.oci.image.config.v1+json'
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const json = (v: unknown) => Buffer.from(JSON.stringify(v))
const OCI_ARCH: Record<Arch, string> = { x86_64: 'amd64', aarch64: 'arm64' }

/** The layer's tar around the disk: its folder and file headers, then (after the data) padding and the end blocks. */
function layerFrame(spec: ContainerDiskSpec, size: number): { head: Buffer; tail: Buffer } {
  const owner = { uid: QEMU_UID, gid: QEMU_UID }
  const head = Buffer.concat([
    tarHeader({ name: 'disk/', mode: 0o555, ...owner }, 0, 0),
    tarHeader({ name: `disk/${spec.fileName}`, mode: 0o444, ...owner }, size, 0),
  ])
  return { head, tail: Buffer.concat([tarPadding(size), Buffer.alloc(1024)]) }
}

/** Reads the file once, handing each chunk to `onChunk`; returns its sha256. */
async function streamFile(file: string, onChunk: (b: Buffer) => void): Promise<string> {
  const own = createHash('sha256')
  const signal = childCancelSignal()
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, signal })) {
    own.update(chunk as Buffer)
    onChunk(chunk as Buffer)
  }
  return own.digest('hex')
}

function refuseChanged(spec: ContainerDiskSpec, got: string): never {
  throw new UserError(`image ${spec.source}: its sha256 is ${got}, not ${spec.sha256} (the store image was changed or damaged)`,
    'Re-import the image (`fleet image import`) or rebuild it; never edit a store image in place.')
}

/** Pass one: the layer's digest and size (and the source checked against its expected sha256). */
export async function layout(spec: ContainerDiskSpec): Promise<ContainerDiskLayout & { fileSha: string; blobs: Map<string, Buffer> }> {
  const size = (await stat(spec.source)).size
  const { head, tail } = layerFrame(spec, size)
  const h: Hash = createHash('sha256').update(head)
  const fileSha = await streamFile(spec.source, (b) => h.update(b))
  if (spec.sha256 && fileSha !== spec.sha256) refuseChanged(spec, fileSha)
  const layerDigest = h.update(tail).digest('hex')
  const layerSize = head.length + size + tail.length
  const config = json({
    architecture: OCI_ARCH[spec.arch], os: 'linux',
    config: { Labels: { 'org.opencontainers.image.title': spec.fileName } },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
  })
  const manifest = json({
    schemaVersion: 2, mediaType: MANIFEST,
    config: { mediaType: CONFIG, digest: `sha256:${sha(config)}`, size: config.length },
    layers: [{ mediaType: LAYER, digest: `sha256:${layerDigest}`, size: layerSize }],
  })
  const blobs = new Map([[sha(config), config], [sha(manifest), manifest]])
  const index = json({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{
      mediaType: MANIFEST, digest: `sha256:${sha(manifest)}`, size: manifest.length,
      annotations: { 'org.opencontainers.image.ref.name': spec.tag },
    }],
  })
  const small = smallEntries(index, blobs)
  const archiveSize = small.length - 1024 + 512 + layerSize + tarPadding(layerSize).length + 1024
  const all = new Map([...blobs, ['index.json', index]])
  return { layerDigest, layerSize, configDigest: sha(config), manifestDigest: sha(manifest), archiveSize, fileSha, blobs: all }
}

/** oci-layout, index.json, the folders and the small blobs, as a complete ustar (end blocks included). */
function smallEntries(index: Buffer, blobs: Map<string, Buffer>): Buffer {
  return ustar([
    { name: 'oci-layout', mode: 0o644, data: json({ imageLayoutVersion: '1.0.0' }) },
    { name: 'index.json', mode: 0o644, data: index },
    { name: 'blobs/', mode: 0o755 },
    { name: 'blobs/sha256/', mode: 0o755 },
    ...[...blobs].map(([digest, data]) => ({ name: `blobs/sha256/${digest}`, mode: 0o644, data })),
  ], 0)
}

/**
 * Writes the archive to `tmp` (the caller renames it into place) and returns its layout. The
 * source is read twice; if it changed between the reads the write is refused.
 */
export async function writeContainerDisk(spec: ContainerDiskSpec, tmp: string): Promise<ContainerDiskLayout> {
  const l = await layout(spec)
  const index = l.blobs.get('index.json')!
  const blobs = new Map([...l.blobs].filter(([k]) => k !== 'index.json'))
  const small = smallEntries(index, blobs)
  const size = (await stat(spec.source)).size
  const { head, tail } = layerFrame(spec, size)
  let second = ''
  async function* archive() {
    yield small.subarray(0, small.length - 1024) // the end blocks come after the layer
    yield tarHeader({ name: `blobs/sha256/${l.layerDigest}`, mode: 0o644 }, l.layerSize, 0)
    yield head
    const h = createHash('sha256')
    const signal = childCancelSignal()
    for await (const chunk of createReadStream(spec.source, { highWaterMark: 1 << 20, signal })) {
      h.update(chunk as Buffer)
      yield chunk as Buffer
    }
    second = h.digest('hex')
    yield Buffer.concat([tail, tarPadding(l.layerSize), Buffer.alloc(1024)])
  }
  await pipeline(archive, createWriteStream(tmp, { mode: 0o644 }))
  if (second !== l.fileSha) refuseChanged({ ...spec, sha256: l.fileSha }, second)
  const written = (await stat(tmp)).size
  if (written !== l.archiveSize) throw new Error(`${tmp}: wrote ${written} bytes, expected ${l.archiveSize}`)
  return { layerDigest: l.layerDigest, layerSize: l.layerSize, configDigest: l.configDigest, manifestDigest: l.manifestDigest, archiveSize: l.archiveSize }
}
