// The /var disk: ext4 labelled `var` holding identity/ (DESIGN.md modes), home/ and log/journal/.
import { mkdtemp, mkdir, chmod, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deviceOf, runGuestfish, type GfCommand } from '../adapters/guestfish.js'
import { chownRoot, mkfsExt4FromDir } from '../adapters/mkfs.js'
import * as qemuImg from '../adapters/qemu-img.js'
import { identityMode } from '../machines/model.js'

export const VAR_LABEL = 'var'
export type VarDiskMethod = 'mkfs' | 'guestfish'

export function varDiskMethod(env = process.env): VarDiskMethod {
  return env.FLEET_VAR_METHOD === 'guestfish' ? 'guestfish' : 'mkfs'
}

/** Folders every /var disk has besides identity/. */
const SKELETON = ['home', 'log', 'log/journal']

/**
 * A new /var disk at `file` (qcow2). 'mkfs' builds the filesystem in userspace with
 * `mkfs.ext4 -d` (no appliance, ~0.1 s); 'guestfish' formats and writes through the libguestfs
 * appliance (~30 s under TCG). Tests show both give the same files, modes and owners.
 */
export async function createVarDisk(file: string, sizeBytes: number, identity: Map<string, Buffer>, method = varDiskMethod()): Promise<void> {
  if (method === 'guestfish') {
    await qemuImg.createQcow2(file, sizeBytes)
    const ic = await identityCommands(identity)
    try {
      await runGuestfish([file], [
        ['mkfs', 'ext4', deviceOf(0), `label:${VAR_LABEL}`],
        ['mount', deviceOf(0), '/'],
        ...SKELETON.map((d) => ['mkdir-p', `/${d}`]),
        ...ic.commands,
      ])
    } finally {
      await ic.cleanup()
    }
    return
  }
  const work = await mkdtemp(join(tmpdir(), 'fleet-var-'))
  try {
    const root = join(work, 'root')
    await mkdir(join(root, 'identity'), { recursive: true })
    for (const d of SKELETON) await mkdir(join(root, d), { recursive: true })
    for (const [name, data] of identity) {
      const p = join(root, 'identity', name)
      await writeFile(p, data)
      await chmod(p, identityMode(name))
    }
    for (const d of ['identity', ...SKELETON]) await chmod(join(root, d), 0o755)
    const raw = join(work, 'var.raw')
    await mkfsExt4FromDir(raw, sizeBytes, VAR_LABEL, root)
    if (process.getuid?.() !== 0) {
      await chownRoot(raw, ['/identity', ...SKELETON.map((d) => `/${d}`), ...[...identity.keys()].map((n) => `/identity/${n}`)])
    }
    await qemuImg.convert(raw, 'raw', file)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/**
 * guestfish commands that make /identity hold exactly `identity` (on a mounted filesystem):
 * files not in the set are removed, the rest uploaded with their modes. Returns the temp
 * folder with the uploaded copies so the caller can remove it.
 */
export async function identityCommands(identity: Map<string, Buffer>, prefix = ''): Promise<{ commands: GfCommand[]; cleanup: () => Promise<void> }> {
  const staging = await mkdtemp(join(tmpdir(), 'fleet-identity-'))
  const commands: GfCommand[] = [['rm-rf', `${prefix}/identity`], ['mkdir-p', `${prefix}/identity`], ['chmod', '0755', `${prefix}/identity`]]
  let i = 0
  for (const [name, data] of identity) {
    const local = join(staging, String(i++))
    await writeFile(local, data)
    commands.push(['upload', local, `${prefix}/identity/${name}`], ['chmod', `0${identityMode(name).toString(8)}`, `${prefix}/identity/${name}`], ['chown', '0', '0', `${prefix}/identity/${name}`])
  }
  return { commands, cleanup: () => rm(staging, { recursive: true, force: true }) }
}
