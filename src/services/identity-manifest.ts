// What fleet last wrote to a VM's /var/identity: name -> sha256, kept in vms/<name>/identity.json.
// Lets --dry-run show identity changes without launching an appliance.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { UserError } from '../errors.js'
import { IDENTITY_FILES } from '../machines/model.js'
import { DataFileRefused, readDataFile } from '../util/data-file.js'
import { writeFileAtomic } from '../util/fsx.js'

export type Manifest = Record<string, string>

export function manifestOf(identity: Map<string, Buffer>): Manifest {
  return Object.fromEntries([...identity].map(([n, b]) => [n, createHash('sha256').update(b).digest('hex')]))
}

/** identity.json as written by fleet: identity file names to sha256; anything else is exit 2 naming the file. */
export async function readManifest(vmDir: string): Promise<Manifest | undefined> {
  const f = join(vmDir, 'identity.json')
  const fail = (what: string, cause?: unknown): never => {
    throw new UserError(`${f} is corrupt: ${what}`, `Remove ${f}; the next \`fleet upgrade\` rewrites /var/identity in full and writes it again.`, { cause })
  }
  let bytes: Buffer | undefined
  try {
    bytes = await readDataFile(f)
  } catch (e) {
    if (e instanceof DataFileRefused) return fail(e.why, e)
    throw e
  }
  if (bytes === undefined) return undefined
  let raw: unknown
  try {
    raw = JSON.parse(bytes.toString('utf8'))
  } catch (e) {
    return fail(`not valid JSON (${(e as Error).message})`, e)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('must be a JSON object')
  const m = Object.create(null) as Manifest
  for (const [name, digest] of Object.entries(raw)) {
    if (!(IDENTITY_FILES as readonly string[]).includes(name)) fail(`${JSON.stringify(name)} is not an identity file name`)
    if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) fail(`${name}: ${JSON.stringify(digest)} is not a sha256 hex digest`)
    m[name] = digest as string
  }
  return m
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
  const b = before ?? (Object.create(null) as Manifest)
  return {
    added: Object.keys(after).filter((k) => !(k in b)).sort(),
    changed: Object.keys(after).filter((k) => k in b && b[k] !== after[k]).sort(),
    removed: Object.keys(b).filter((k) => !(k in after)).sort(),
  }
}
