// A new qcow2 overlay written by fleet itself: the few clusters `qemu-img create -f qcow2 -b
// BACKING -F qcow2 FILE` writes for an empty overlay (docs/interop/qcow2.txt in QEMU), byte for
// byte as QEMU 7.2's qemu-img writes them (test/unit/qcow2-overlay.test.ts compares the two and
// has qemu-img check the result). No process: a VM or an upgrade makes one per VM. Anything
// outside the simple case (a backing image that is not qcow2, an L1 table over one cluster) is
// left to qemu-img.
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import * as qemuImg from '../adapters/qemu-img.js'

const MAGIC = 0x514649fb
const CLUSTER_BITS = 16
const CLUSTER = 1 << CLUSTER_BITS
/** Bytes of guest data one L1 entry maps: a full L2 table of 8-byte entries. */
const PER_L1_ENTRY = CLUSTER * (CLUSTER / 8)
const HEADER_LENGTH = 112
const EXT_BACKING_FORMAT = 0xe2792aca
const EXT_FEATURE_NAMES = 0x6803f857
/** QEMU's feature name table: (type: 0 incompatible, 1 compatible, 2 autoclear; bit; name). */
const FEATURE_NAMES: [number, number, string][] = [
  [0, 0, 'dirty bit'], [0, 1, 'corrupt bit'], [0, 2, 'external data file'], [0, 3, 'compression type'],
  [0, 4, 'extended L2 entries'], [1, 0, 'lazy refcounts'], [2, 0, 'bitmaps'], [2, 1, 'raw external data'],
]

/** The virtual size of a qcow2 image (from its header), or undefined if it is not one. */
async function qcow2Size(file: string): Promise<bigint | undefined> {
  const fh = await open(file, constants.O_RDONLY)
  try {
    const head = Buffer.alloc(32)
    const { bytesRead } = await fh.read(head, 0, 32, 0)
    if (bytesRead < 32 || head.readUInt32BE(0) !== MAGIC || ![2, 3].includes(head.readUInt32BE(4))) return undefined
    return head.readBigUInt64BE(24)
  } finally {
    await fh.close()
  }
}

/** The bytes of an empty overlay of `backing` (a qcow2 of `size` bytes); undefined outside the simple case. */
export function overlayBytes(backing: string, size: bigint): Buffer | undefined {
  const name = Buffer.from(backing, 'utf8')
  const l1Size = Number((size + BigInt(PER_L1_ENTRY) - 1n) / BigInt(PER_L1_ENTRY))
  if (name.length === 0 || name.length > 1023 || l1Size === 0 || l1Size * 8 > CLUSTER) return undefined
  // Cluster 0 header, 1 refcount table, 2 refcount block, 3 L1 table (not padded to a cluster).
  const out = Buffer.alloc(3 * CLUSTER + l1Size * 8)
  let at = HEADER_LENGTH
  const ext = (type: number, data: Buffer) => {
    out.writeUInt32BE(type, at)
    out.writeUInt32BE(data.length, at + 4)
    data.copy(out, at + 8)
    at += 8 + Math.ceil(data.length / 8) * 8
  }
  ext(EXT_BACKING_FORMAT, Buffer.from('qcow2'))
  const names = Buffer.alloc(48 * FEATURE_NAMES.length)
  FEATURE_NAMES.forEach(([type, bit, n], i) => {
    names.writeUInt8(type, 48 * i)
    names.writeUInt8(bit, 48 * i + 1)
    names.write(n, 48 * i + 2, 'latin1')
  })
  ext(EXT_FEATURE_NAMES, names)
  at += 8 // end of the extensions (type 0, length 0)
  out.writeUInt32BE(MAGIC, 0)
  out.writeUInt32BE(3, 4) // version
  out.writeBigUInt64BE(BigInt(at), 8) // backing file name offset
  out.writeUInt32BE(name.length, 16)
  out.writeUInt32BE(CLUSTER_BITS, 20)
  out.writeBigUInt64BE(size, 24)
  // 32: no encryption
  out.writeUInt32BE(l1Size, 36)
  out.writeBigUInt64BE(BigInt(3 * CLUSTER), 40) // L1 table
  out.writeBigUInt64BE(BigInt(CLUSTER), 48) // refcount table
  out.writeUInt32BE(1, 56) // refcount table clusters
  // 60: no snapshots; 72–95: no incompatible, compatible or autoclear features
  out.writeUInt32BE(4, 96) // refcount order: 16-bit refcounts
  out.writeUInt32BE(HEADER_LENGTH, 100)
  // 104: compression type zlib
  name.copy(out, at)
  out.writeBigUInt64BE(BigInt(2 * CLUSTER), CLUSTER) // refcount table entry 0: the block at cluster 2
  for (let c = 0; c < 4; c++) out.writeUInt16BE(1, 2 * CLUSTER + 2 * c) // clusters 0–3 in use once
  return out
}

/** A qcow2 overlay of `backing` (itself qcow2) at `file`, which must not exist; flushed to disk. */
export async function createOverlay(file: string, backing: string): Promise<void> {
  const size = await qcow2Size(backing).catch(() => undefined)
  const bytes = size === undefined ? undefined : overlayBytes(backing, size)
  if (!bytes) return qemuImg.createOverlay(file, backing) // qemu-img's own words for what it cannot use
  const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
  try {
    await fh.writeFile(bytes)
    await fh.sync() // as qemu-img, which flushes the image when it closes it
  } finally {
    await fh.close()
  }
}
