// Small filesystem helpers: atomic writes and content hashing.
import { nodeCrypto } from './builtin.js'
import { createReadStream, createWriteStream } from 'node:fs'
import { constants } from 'node:fs'
import { mkdir, open, rename, rm, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Transform } from 'node:stream'

/** fsync of a folder: makes a rename or unlink inside it survive a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** fsync of one file's data. */
export async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, constants.O_RDONLY)
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * Writes via a temp file + fsync + rename + fsync of the folder: readers never see half a
 * file, and after a crash the file is the old one or the new one, never empty.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  await mkdir(dirname(file), { recursive: true })
  const tmp = `${file}.tmp-${process.pid}`
  try {
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, mode)
    try {
      await fh.writeFile(data)
      await fh.chmod(mode)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, file)
  } catch (e) {
    await rm(tmp, { force: true })
    throw e
  }
  await fsyncDir(dirname(file))
}

/** Removes a file durably; a missing file is fine. */
export async function unlinkDurable(file: string): Promise<void> {
  try {
    await unlink(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return
    throw e
  }
  await fsyncDir(dirname(file))
}

/** Renames durably (both folders synced). */
export async function renameDurable(from: string, to: string): Promise<void> {
  await rename(from, to)
  await fsyncDir(dirname(to))
  if (dirname(from) !== dirname(to)) await fsyncDir(dirname(from))
}

/** Copies src to dst while hashing it; returns the sha256 hex digest. One read of the source. */
export async function copyHashing(src: string, dst: string): Promise<string> {
  const hash = nodeCrypto().createHash('sha256')
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk)
      cb(null, chunk)
    },
  })
  await pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), tap, createWriteStream(dst, { mode: 0o644 }))
  return hash.digest('hex')
}

export async function sha256File(file: string): Promise<string> {
  const hash = nodeCrypto().createHash('sha256')
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash)
  return hash.digest('hex')
}
