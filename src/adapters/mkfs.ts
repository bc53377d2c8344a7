// e2fsprogs: a fresh ext4 filesystem populated from a folder without any appliance.
import { run } from './exec.js'

/** mkfs.ext4 on a (sparse) raw file, filled from `dir`, with a label. */
export async function mkfsExt4FromDir(raw: string, sizeBytes: number, label: string, dir: string): Promise<void> {
  // root_owner: the root folder belongs to root even when we run unprivileged.
  await run(['mkfs.ext4'], ['-q', '-F', '-L', label, '-E', 'root_owner=0:0', '-d', dir, raw, `${Math.floor(sizeBytes / 1024)}k`])
}

/** Sets owner 0:0 on paths inside an unmounted ext4 image (mkfs -d copies the caller's uid). */
export async function chownRoot(raw: string, paths: string[]): Promise<void> {
  if (paths.length === 0) return
  const script = paths.flatMap((p) => [`set_inode_field ${p} uid 0`, `set_inode_field ${p} gid 0`]).join('\n') + '\n'
  await run(['debugfs'], ['-w', '-f', '-', raw], { input: script })
}

/**
 * Like mkfsExt4FromDir, but the same inputs give the same bytes: a fixed filesystem UUID and
 * directory hash seed, and every timestamp mke2fs takes from the clock at 0 (E2FSPROGS_FAKE_TIME).
 */
export async function mkfsExt4Reproducible(raw: string, sizeBytes: number, label: string, dir: string, uuid: string): Promise<void> {
  await run(['mkfs.ext4'], ['-q', '-F', '-L', label, '-U', uuid, '-E', `root_owner=0:0,hash_seed=${uuid}`, '-d', dir, raw, `${Math.floor(sizeBytes / 1024)}k`],
    { env: { E2FSPROGS_FAKE_TIME: '0' } })
}
