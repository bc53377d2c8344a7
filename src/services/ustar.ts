// A minimal POSIX ustar archive writer: one folder of small files with exact modes and owners,
// so guestfish can unpack a whole identity folder in one appliance call (tar-in). `tarHeader` alone
// serves writers that stream a large file's data themselves (the OCI archive of a base image).

export interface TarEntry {
  /** Relative path; a folder ends with '/'. At most 100 bytes. */
  name: string
  mode: number
  uid?: number
  gid?: number
  data?: Buffer
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0'
}

/** A size field: octal up to 8 GiB - 1, above that base-256 (the GNU/star extension Go's and GNU tar read). */
function sizeField(h: Buffer, size: number): void {
  if (size < 8 ** 11) {
    h.write(octal(size, 12), 124, 'ascii')
    return
  }
  let v = BigInt(size)
  for (let i = 135; i > 124; i--) {
    h[i] = Number(v & 0xffn)
    v >>= 8n
  }
  h[124] = 0x80
}

/** One 512-byte header; `size` is the data length that follows (padded by the caller to 512). */
export function tarHeader(e: Omit<TarEntry, 'data'>, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(512)
  const name = Buffer.from(e.name)
  if (name.length > 100) throw new Error(`tar entry name longer than 100 bytes: ${e.name}`)
  const dir = e.name.endsWith('/')
  name.copy(h, 0)
  h.write(octal(e.mode & 0o7777, 8), 100, 'ascii')
  h.write(octal(e.uid ?? 0, 8), 108, 'ascii')
  h.write(octal(e.gid ?? 0, 8), 116, 'ascii')
  sizeField(h, dir ? 0 : size)
  h.write(octal(mtime, 12), 136, 'ascii')
  h.write('        ', 148, 'ascii') // checksum counted as spaces
  h.write(dir ? '5' : '0', 156, 'ascii')
  h.write('ustar\0' + '00', 257, 'ascii')
  let sum = 0
  for (const b of h) sum += b
  h.write(octal(sum, 7) + ' ', 148, 'ascii')
  return h
}

/** Zero bytes that pad `size` bytes of data to a whole 512-byte block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((512 - (size % 512)) % 512)
}

/** The archive bytes: each entry's header and data padded to 512 bytes, then two zero blocks. */
export function ustar(entries: TarEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    parts.push(tarHeader(e, e.data?.length ?? 0, mtime))
    if (e.name.endsWith('/') || !e.data?.length) continue
    parts.push(e.data, tarPadding(e.data.length))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}
