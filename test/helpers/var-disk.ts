// Reads /var disks back through guestfish (one appliance for all), independent of how fleet
// wrote them: label, plus a tar of the filesystem whose listing gives modes and owners.
import { execa } from 'execa'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface VarDiskContent {
  label: string
  dirs: string[]
  files: Record<string, { mode: string; uid: number; gid: number; content: string }>
}

const MODE_BITS: Record<string, number> = { r: 4, w: 2, x: 1 }
function octal(perm: string): string {
  let out = ''
  for (let i = 1; i < 10; i += 3) out += [...perm.slice(i, i + 3)].reduce((n, c) => n + (MODE_BITS[c] ?? 0), 0)
  return String(Number(out)).replace(/^0+(?=\d)/, '')
}

export async function readVarDisks(disks: string[]): Promise<VarDiskContent[]> {
  const work = mkdtempSync(join(tmpdir(), 'fleet-read-'))
  const args = ['--ro', '--format=qcow2', ...disks.flatMap((d) => ['-a', d]), '--', 'run']
  disks.forEach((_, i) => {
    const dev = `/dev/sd${String.fromCharCode(97 + i)}`
    args.push(':', 'vfs-label', dev, ':', 'mount-ro', dev, '/', ':', 'tar-out', '/', join(work, `${i}.tar`), ':', 'umount', '/')
  })
  const env = { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: process.env.LIBGUESTFS_BACKEND_SETTINGS ?? 'force_tcg' }
  const labels = String((await execa('guestfish', args, { env })).stdout).split('\n')
  const out: VarDiskContent[] = []
  for (let i = 0; i < disks.length; i++) {
    const tar = join(work, `${i}.tar`)
    const c: VarDiskContent = { label: labels[i]!.trim(), dirs: [], files: {} }
    const listing = String((await execa('tar', ['--numeric-owner', '-tvf', tar])).stdout)
    const dest = join(work, `${i}`)
    await execa('mkdir', ['-p', dest])
    await execa('tar', ['-xf', tar, '-C', dest, '--no-same-owner'])
    for (const line of listing.split('\n').filter(Boolean)) {
      const m = /^(\S)(\S{9})\s+(\d+)\/(\d+)\s+\d+\s+\S+\s+\S+\s+\.?(\/?.*?)\/?$/.exec(line)
      if (!m) continue
      const path = '/' + m[5]!.replace(/^\//, '')
      if (path === '/' || path.startsWith('/lost+found')) continue
      if (m[1] === 'd') c.dirs.push(path)
      else c.files[path] = { mode: octal(m[1]! + m[2]!), uid: Number(m[3]), gid: Number(m[4]), content: readFileSync(join(dest, path), 'utf8') }
    }
    c.dirs.sort()
    out.push(c)
  }
  return out
}
