// /var disks in any on-disk state, built without an appliance (mkfs.ext4 -d + qemu-img), and a
// fast look at a disk's superblock; for the crash-recovery tests of the identity resync.
import { execa } from 'execa'
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { dirname, join } from 'node:path'

/** Paths relative to the filesystem root ('identity/machine-id', 'home/data') → content. */
export type Tree = Record<string, string | Buffer>

export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')

/** `set` as a tree under `folder` ('identity', 'identity.new'…); `only` keeps the first n files. */
export function under(folder: string, set: Map<string, Buffer>, only = set.size): Tree {
  return Object.fromEntries([...set].slice(0, only).map(([n, d]) => [`${folder}/${n}`, d]))
}

/**
 * A qcow2 /var disk holding exactly `tree` (folders 0755, files 0644, private keys 0600, owner
 * root). `corrupt` makes two files claim one block: e2fsck -p cannot repair that.
 */
export async function makeDisk(file: string, tree: Tree, opts: { label?: string; folders?: string[]; corrupt?: boolean } = {}): Promise<void> {
  const work = mkdtempSync(join(dirname(file), '.mk-'))
  try {
    const root = join(work, 'root')
    mkdirSync(root)
    for (const d of ['home', 'log/journal', ...(opts.folders ?? [])]) mkdirSync(join(root, d), { recursive: true })
    for (const [p, data] of Object.entries(tree)) {
      mkdirSync(dirname(join(root, p)), { recursive: true })
      writeFileSync(join(root, p), data)
      chmodSync(join(root, p), p.endsWith('_key') ? 0o600 : 0o644)
    }
    const raw = join(work, 'var.raw')
    await execa('mkfs.ext4', ['-q', '-F', '-L', opts.label ?? 'var', '-E', 'root_owner=0:0', '-d', root, raw, '64M'])
    if (opts.corrupt) {
      const block = String((await execa('debugfs', ['-R', 'blocks /identity/machine-id', raw])).stdout).trim()
      await execa('debugfs', ['-w', '-R', `set_inode_field /home/data block[0] ${block}`, raw])
    }
    await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, file])
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** True if the ext4 on a qcow2 has a journal still to replay (it was not unmounted cleanly). */
export async function needsRecovery(file: string): Promise<boolean> {
  const work = mkdtempSync(join(dirname(file), '.look-'))
  try {
    const raw = join(work, 'var.raw')
    await execa('qemu-img', ['convert', '-q', '-U', '-O', 'raw', file, raw])
    const r = await execa('dumpe2fs', ['-h', raw], { reject: false })
    return /features:.*needs_recovery/.test(String(r.stdout))
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

export interface DiskFile {
  mode: number
  uid: number
  gid: number
  data: Buffer
}

/**
 * What the guest would see on a /var disk, read without an appliance: a raw copy, its journal
 * replayed (e2fsck -f -p, as the next mount would), dumped with debugfs (modes and owners kept).
 */
export async function readDisk(file: string): Promise<{ files: Record<string, DiskFile>; dirs: string[] }> {
  const work = mkdtempSync(join(dirname(file), '.read-'))
  try {
    const raw = join(work, 'var.raw')
    await execa('qemu-img', ['convert', '-q', '-U', '-O', 'raw', file, raw])
    const fsck = await execa('e2fsck', ['-f', '-p', raw], { reject: false })
    if ((fsck.exitCode ?? 8) > 1) throw new Error(`e2fsck ${file}: exit ${fsck.exitCode}\n${fsck.stdout}${fsck.stderr}`)
    const dest = join(work, 'root')
    mkdirSync(dest)
    await execa('debugfs', ['-R', `rdump / ${dest}`, raw])
    const out: { files: Record<string, DiskFile>; dirs: string[] } = { files: {}, dirs: [] }
    const walk = (rel: string): void => {
      for (const e of readdirSync(join(dest, rel), { withFileTypes: true })) {
        const p = `${rel}/${e.name}`
        if (p === '/lost+found') continue
        const st = lstatSync(join(dest, p))
        if (e.isDirectory()) {
          out.dirs.push(p)
          walk(p)
        } else out.files[p] = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, data: readFileSync(join(dest, p)) }
      }
    }
    walk('')
    out.dirs.sort()
    return out
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** The files of one folder of a disk read by readDisk, as name → content. */
export function folder(files: Record<string, DiskFile>, name: string): Map<string, Buffer> | undefined {
  const prefix = `/${name}/`
  const entries = Object.entries(files).filter(([p]) => p.startsWith(prefix)).map(([p, f]) => [p.slice(prefix.length), f.data] as const)
  return entries.length ? new Map(entries) : undefined
}

/** Every file under `dir` (recursively) whose bytes contain `needle`. */
export function filesContaining(dir: string, needle: Buffer): string[] {
  const hits: string[] = []
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile() && readFileSync(p).includes(needle)) hits.push(p)
    }
  }
  walk(dir)
  return hits
}
