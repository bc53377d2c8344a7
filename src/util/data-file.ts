// Files from the repository or the state directory are data, never paths: opened without
// following a symbolic link, only regular files, and never more than a size cap.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'
import { lstat, readlink } from 'node:fs/promises'

/** Identity files, machine.json and fleet's own records are all far smaller than this. */
export const DATA_FILE_MAX = 64 * 1024

/** Why a data file cannot be read: a sentence naming what the file is instead. */
export class DataFileRefused extends Error {
  constructor(readonly file: string, readonly why: string) {
    super(`${file} ${why}`)
    this.name = 'DataFileRefused'
  }
}

/** Says what a path is when it is not a regular file (symlink with its target, fifo, folder...). */
async function describe(file: string): Promise<string> {
  const st = await lstat(file).catch(() => undefined)
  if (!st) return 'does not exist'
  if (st.isSymbolicLink()) return `is a symbolic link (to ${await readlink(file).catch(() => '?')}); it must be a regular file`
  if (st.isFIFO()) return 'is a fifo (named pipe); it must be a regular file'
  if (st.isDirectory()) return 'is a folder; it must be a regular file'
  if (st.isSocket()) return 'is a socket; it must be a regular file'
  if (st.isBlockDevice() || st.isCharacterDevice()) return 'is a device; it must be a regular file'
  return 'is not a regular file'
}

/**
 * The bytes of `file`, or undefined if it does not exist. O_NOFOLLOW refuses a symlink in the
 * last component, O_NONBLOCK keeps a fifo from blocking the open; fstat then proves a regular file.
 */
export async function readDataFile(file: string, maxBytes = DATA_FILE_MAX): Promise<Buffer | undefined> {
  // Synchronous calls: these files are small, and plan reads ten per VM for a hundred VMs; through
  // libuv's four-thread pool each open/fstat/read/close would wait its turn.
  let fd: number
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      // A dangling symlink is ENOENT to open(2) but still a symlink, not a missing file.
      if ((await lstat(file).catch(() => undefined))?.isSymbolicLink()) throw new DataFileRefused(file, await describe(file))
      return undefined
    }
    if (code === 'ELOOP' || code === 'ENXIO' || code === 'EISDIR') throw new DataFileRefused(file, await describe(file))
    throw new DataFileRefused(file, `cannot be read: ${(e as Error).message}`)
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new DataFileRefused(file, await describe(file))
    if (st.size > maxBytes) throw new DataFileRefused(file, `is ${st.size} bytes; at most ${maxBytes} are allowed`)
    // Sized from fstat, grown up to one byte past the cap so a file that grows between fstat and read is still caught.
    let buf = Buffer.alloc(st.size + 1)
    let n = 0
    for (;;) {
      if (n === buf.length) {
        const bigger = Buffer.alloc(maxBytes + 1)
        buf.copy(bigger, 0, 0, n)
        buf = bigger
      }
      const bytesRead = readSync(fd, buf, n, buf.length - n, n)
      if (bytesRead === 0) break
      n += bytesRead
      if (n > maxBytes) throw new DataFileRefused(file, `is more than ${maxBytes} bytes`)
    }
    return buf.subarray(0, n)
  } finally {
    closeSync(fd)
  }
}

/** True if `dir` is a real folder (not a symlink to one). */
export async function isRealDir(dir: string): Promise<boolean> {
  const st = await lstat(dir).catch(() => undefined)
  return Boolean(st?.isDirectory())
}

export { describe as describePath }
