// What fleet last wrote to a VM's /var/identity: name -> sha256, kept in vms/<name>/identity.json.
// Lets --dry-run show identity changes without launching an appliance.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../util/fsx.js'

export type Manifest = Record<string, string>

export function manifestOf(identity: Map<string, Buffer>): Manifest {
  return Object.fromEntries([...identity].map(([n, b]) => [n, createHash('sha256').update(b).digest('hex')]))
}

export async function readManifest(vmDir: string): Promise<Manifest | undefined> {
  const f = join(vmDir, 'identity.json')
  return existsSync(f) ? (JSON.parse(await readFile(f, 'utf8')) as Manifest) : undefined
}

export async function writeManifest(vmDir: string, m: Manifest): Promise<void> {
  await writeFileAtomic(join(vmDir, 'identity.json'), JSON.stringify(m, null, 2) + '\n')
}

export interface IdentityDiff {
  added: string[]
  changed: string[]
  removed: string[]
}

export function diffManifest(before: Manifest | undefined, after: Manifest): IdentityDiff {
  const b = before ?? {}
  return {
    added: Object.keys(after).filter((k) => !(k in b)).sort(),
    changed: Object.keys(after).filter((k) => k in b && b[k] !== after[k]).sort(),
    removed: Object.keys(b).filter((k) => !(k in after)).sort(),
  }
}
