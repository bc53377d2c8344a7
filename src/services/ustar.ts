// A minimal POSIX ustar archive writer: one folder of small files with exact modes and owners,
// so guestfish can unpack a whole identity folder in one appliance call (tar-in).

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

function header(e: TarEntry, mtime: number): Buffer {
  const h = Buffer.alloc(512)
  const name = Buffer.from(e.name)
  if (name.length > 100) throw new Error(`tar entry name longer than 100 bytes: ${e.name}`)
  const dir = e.name.endsWith('/')
  name.copy(h, 0)
  h.write(octal(e.mode & 0o7777, 8), 100, 'ascii')
  h.write(octal(e.uid ?? 0, 8), 108, 'ascii')
  h.write(octal(e.gid ?? 0, 8), 116, 'ascii')
  h.write(octal(dir ? 0 : (e.data?.length ?? 0), 12), 124, 'ascii')
  h.write(octal(mtime, 12), 136, 'ascii')
  h.write('        ', 148, 'ascii') // checksum counted as spaces
  h.write(dir ? '5' : '0', 156, 'ascii')
  h.write('ustar\0' + '00', 257, 'ascii')
  let sum = 0
  for (const b of h) sum += b
  h.write(octal(sum, 7) + ' ', 148, 'ascii')
  return h
}

/** The archive bytes: each entry's header and data padded to 512 bytes, then two zero blocks. */
export function ustar(entries: TarEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    parts.push(header(e, mtime))
    if (e.name.endsWith('/') || !e.data?.length) continue
    parts.push(e.data, Buffer.alloc((512 - (e.data.length % 512)) % 512))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}
