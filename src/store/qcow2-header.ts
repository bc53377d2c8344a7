// The qcow2 header of an untrusted image, read by fleet itself (docs/interop/qcow2.txt in QEMU):
// qemu-img is never asked to guess a format or to open what the header points at.
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { UserError } from '../errors.js'

export interface Qcow2Header {
  version: number
  clusterBits: number
  /** The backing file name as stored (a path, json:{...} or a protocol URL). */
  backingFile?: string
  /** 0 none, 1 AES, 2 LUKS. */
  cryptMethod: number
  incompatible: bigint
  autoclear: bigint
  /** Name from the external data file header extension. */
  dataFile?: string
}

export const INCOMPAT = { dirty: 1n, corrupt: 2n, dataFile: 4n, compression: 8n, extendedL2: 16n } as const
const KNOWN_INCOMPAT = INCOMPAT.dirty | INCOMPAT.corrupt | INCOMPAT.dataFile | INCOMPAT.compression | INCOMPAT.extendedL2
const EXT_END = 0
const EXT_DATA_FILE = 0x44415441

/** What the first bytes say a non-qcow2 file is. */
function sniff(head: Buffer): string {
  const starts = (s: string, at = 0) => head.subarray(at, at + s.length).equals(Buffer.from(s, 'latin1'))
  if (head.length === 0) return 'an empty file'
  if (starts('KDMV') || starts('# Disk DescriptorFile')) return 'a VMDK image'
  if (starts('<<< ') && head.readUInt32LE(0x40) === 0xbeda107f) return 'a VDI image'
  if (starts('vhdxfile')) return 'a VHDX image'
  if (starts('conectix')) return 'a VHD image'
  if (starts('QED\0')) return 'a QED image'
  if (starts('LUKS\xba\xbe')) return 'a LUKS volume'
  if (starts('\x1f\x8b')) return 'gzip data'
  if (starts('\x28\xb5\x2f\xfd')) return 'zstd data'
  if (starts('\xfd7zXZ\0')) return 'xz data'
  return 'raw'
}

/** The header, or a sentence saying why the bytes are not a qcow2 image fleet can read. */
export function parseQcow2Header(buf: Buffer): Qcow2Header | string {
  if (buf.length < 72 || buf.readUInt32BE(0) !== 0x514649fb) {
    const kind = sniff(buf)
    return kind === 'raw' ? 'is raw, not qcow2 (it does not start with a qcow2 header)' : `is ${kind}, not qcow2`
  }
  const version = buf.readUInt32BE(4)
  if (version !== 2 && version !== 3) return `is qcow2 version ${version}; only versions 2 and 3 exist`
  const clusterBits = buf.readUInt32BE(20)
  if (clusterBits < 9 || clusterBits > 21) return `has an invalid cluster size (2^${clusterBits})`
  const backingOffset = buf.readBigUInt64BE(8)
  const backingSize = buf.readUInt32BE(16)
  const h: Qcow2Header = { version, clusterBits, cryptMethod: buf.readUInt32BE(32), incompatible: 0n, autoclear: 0n }
  if (backingOffset !== 0n) {
    const at = Number(backingOffset)
    if (backingSize > 1023 || at + backingSize > buf.length) return 'has a backing file name outside its header'
    h.backingFile = buf.subarray(at, at + backingSize).toString('latin1')
  }
  let extAt = 72
  if (version === 3) {
    if (buf.length < 104) return 'has a truncated version 3 header'
    h.incompatible = buf.readBigUInt64BE(72)
    h.autoclear = buf.readBigUInt64BE(88)
    extAt = buf.readUInt32BE(100)
    if (extAt < 104 || extAt > buf.length) return 'has an invalid header length'
  }
  // Header extensions: type, length, data padded to 8 bytes, up to the end marker.
  for (;;) {
    if (extAt + 8 > buf.length) return 'has a header extension area without an end marker'
    const type = buf.readUInt32BE(extAt)
    const len = buf.readUInt32BE(extAt + 4)
    if (type === EXT_END) break
    if (extAt + 8 + len > buf.length) return 'has a header extension that runs past its first cluster'
    if (type === EXT_DATA_FILE) h.dataFile = buf.subarray(extAt + 8, extAt + 8 + len).toString('latin1')
    extAt += 8 + Math.ceil(len / 8) * 8
  }
  return h
}

/** Why a parsed header is unfit for a base image, or undefined. */
export function refuseHeader(h: Qcow2Header): string | undefined {
  if (h.backingFile !== undefined) {
    const kind = h.backingFile.startsWith('json:') ? 'a json: pseudo-protocol backing name, which makes qemu open whatever it describes'
      : /^[a-z0-9+.-]+:/i.test(h.backingFile) ? 'a protocol backing name, which makes qemu open a remote or host resource'
        : 'a backing file'
    return `has ${kind}: ${JSON.stringify(h.backingFile)}; a base image must stand alone`
  }
  if (h.incompatible & INCOMPAT.dataFile || h.dataFile !== undefined) {
    return `keeps its data in an external data file ${JSON.stringify(h.dataFile ?? '(unnamed)')}, which would expose that host file to every VM`
  }
  if (h.cryptMethod !== 0) return `is encrypted (${h.cryptMethod === 1 ? 'AES' : h.cryptMethod === 2 ? 'LUKS' : `method ${h.cryptMethod}`}); a base image must be readable without a secret`
  if (h.incompatible & INCOMPAT.corrupt) return 'is marked corrupt by qemu'
  if (h.incompatible & INCOMPAT.dirty) return 'is marked dirty (it was not closed cleanly)'
  const unknown = h.incompatible & ~KNOWN_INCOMPAT
  if (unknown) return `needs incompatible qcow2 features fleet does not know (bits 0x${unknown.toString(16)})`
  return undefined
}

/** The first cluster (at most 2 MiB) of a regular file; a sentence if the file is not regular. */
export async function readImageHead(file: string): Promise<Buffer | string> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY).catch((e: NodeJS.ErrnoException) => e)
  if (fh instanceof Error) return fh.code === 'EISDIR' ? 'is a folder, not an image file' : `cannot be opened: ${fh.message}`
  try {
    const st = await fh.stat()
    if (st.isDirectory()) return 'is a folder, not an image file'
    if (!st.isFile()) return 'is not a regular file (a fifo, device or socket); import an image file'
    const buf = Buffer.alloc(Math.min(st.size, 2 * 1024 * 1024))
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/**
 * Before an image is copied into the store: the source must be a regular file (a fifo would
 * block the copy forever, a device would copy a host disk). Throws a UserError naming it.
 */
export async function checkImageSource(file: string): Promise<void> {
  const head = await readImageHead(file)
  if (typeof head === 'string') throw new UserError(`image ${file} refused: it ${head}`, 'Import a standalone qcow2 image file.')
}
