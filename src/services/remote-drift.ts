// What differs between a remote VM and machines/NAME, on the base it runs: its identity (against
// the manifest of what fleet last wrote to its /var there, kept among fleet's own records in the
// state directory's remote/NAME/identity.json) and its definition (the domain there against what
// fleet would define now, compared field by field like a local one). No manifest (a VM made before
// fleet kept one): every identity file counts as changed, so the next upgrade resyncs it.
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Machine } from '../machines/model.js'
import { readIdentityFiles } from '../machines/repository.js'
import type { Paths } from '../repo.js'
import { diffDomain, type DomainChange } from '../xml/diff-domain.js'
import { parseDomainModel } from '../xml/parse-domain.js'
import type { FleetContext } from './context.js'
import { diffManifest, manifestOf, readManifest, writeManifest, type IdentityDiff } from './identity-manifest.js'
import { remoteXmlNow } from './remote-vm.js'

const recordDir = (paths: Paths, name: string) => join(paths.state, 'remote', name)

/** After fleet wrote `identity` to the remote VM's /var (create, resync). */
export async function recordRemoteIdentity(paths: Paths, name: string, identity: Map<string, Buffer>): Promise<void> {
  await mkdir(recordDir(paths, name), { recursive: true, mode: 0o700 })
  await writeManifest(recordDir(paths, name), manifestOf(identity))
}

/** The /var volume is gone (destroy --delete-data): so is the record of what it held. */
export async function forgetRemoteIdentity(paths: Paths, name: string): Promise<void> {
  await rm(recordDir(paths, name), { recursive: true, force: true })
}

export interface RemoteDrift {
  identity: IdentityDiff
  changes: DomainChange[]
}

export const drifted = (d: RemoteDrift) => d.changes.length + d.identity.added.length + d.identity.changed.length + d.identity.removed.length > 0

/** Drift of the remote VM whose domain there is `definedXml` (its inactive XML). Reads only. */
export async function remoteDrift(ctx: FleetContext, m: Machine, definedXml: string): Promise<RemoteDrift> {
  const written = await readManifest(recordDir(ctx.paths, m.name))
  const now = await readIdentityFiles(m)
  const want = manifestOf(now.files)
  // An encrypted host key is not decrypted to compare: its .pub changes with it.
  for (const f of now.encrypted) if (written?.[f]) want[f] = written[f]
  const desired = parseDomainModel(await remoteXmlNow(ctx, m))
  const defined = parseDomainModel(definedXml)
  // fleet names only the NVRAM template of a remote VM; libvirt picks the file there.
  desired.os.nvram = { ...desired.os.nvram, path: desired.os.nvram.path || defined.os.nvram.path }
  const changes = diffDomain(desired, defined)
  return { identity: diffManifest(written, want), changes }
}
