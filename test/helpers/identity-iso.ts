// An ISO9660 disk shaped like KubeVirt's Secret volume (virt-launcher runs genisoimage with the
// Secret's keys as file names), built from the Secret in a `fleet export kubevirt` file.
import { execa } from 'execa'
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Writes `iso` from the Secret in `exportFile`; `edit` may change the files first. Returns the files used. */
export async function isoFromSecret(exportFile: string, iso: string, edit: (files: Map<string, Buffer>) => void = () => {}): Promise<Map<string, Buffer>> {
  const list = JSON.parse(readFileSync(exportFile, 'utf8')) as { items: { kind: string; data: Record<string, string> }[] }
  const secret = list.items.find((i) => i.kind === 'Secret')
  if (!secret) throw new Error(`${exportFile} has no Secret`)
  const files = new Map(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64')]))
  edit(files)
  const dir = `${iso}.d`
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir)
  for (const [k, v] of files) writeFileSync(join(dir, k), v)
  await execa('genisoimage', ['-quiet', '-output', `${iso}.tmp`, '-follow-links', '-volid', 'cfgdata', '-joliet', '-rock', dir])
  renameSync(`${iso}.tmp`, iso)
  rmSync(dir, { recursive: true, force: true })
  return files
}

/** virsh arguments that attach `iso` to a defined domain the way the export's VirtualMachine does (serial fleet-identity). */
export const attachIdentityDisk = (domain: string, iso: string, target = 'vdc') =>
  ['attach-disk', domain, iso, target, '--targetbus', 'virtio', '--mode', 'readonly', '--serial', 'fleet-identity', '--driver', 'qemu', '--subdriver', 'raw', '--config']
