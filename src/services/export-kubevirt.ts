// fleet export kubevirt: per machine, DIR/NAME.json (a List: the identity Secret and the
// VirtualMachine), and once per base image digest and per /var size an OCI archive of a
// containerDisk. Everything is derived from machines/ and the channels; each file appears under
// its final name only complete (temp file, fsync, rename), and an archive already there is kept
// (its name is its content: the store digest, or the template version and size).
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { UserError } from '../errors.js'
import { exportList, redactSecrets } from '../export/kubevirt-manifest.js'
import { writeContainerDisk } from '../export/oci-archive.js'
import { writeVarTemplate } from '../export/var-template.js'
import type { Machine } from '../machines/model.js'
import { loadAllMachines, loadMachine, readIdentity } from '../machines/repository.js'
import { fleetId, readFleetId } from '../store/fleet-id.js'
import { resolveChannel } from '../store/images.js'
import { fsyncFile, renameDurable, writeFileAtomic } from '../util/fsx.js'
import { step } from '../util/interrupt.js'
import { unifiedDiff } from '../util/unified-diff.js'
import { withUndo } from '../util/undo.js'
import type { FleetContext } from './context.js'

/** Bumped when the /var template's layout changes: it is part of the template's tag. */
const VAR_TEMPLATE_VERSION = 'v1'
// REGISTRY as docker and skopeo spell it: a host (with a port), then lowercase path components.
const REGISTRY = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/

export interface ExportArchive {
  file: string
  image: string
  status: 'written' | 'kept' | 'would write'
}

export interface ExportMachine {
  name: string
  file: string
  status: 'created' | 'updated' | 'unchanged'
  bootImage: string
  varImage: string
  /** Unified diff against the file there (Secret values shown only as digests). */
  diff: string[]
}

export interface ExportResult {
  out: string
  registry: string
  dryRun: boolean
  machines: ExportMachine[]
  archives: ExportArchive[]
  /** What the admin runs next: skopeo copy per archive, then kubectl apply. */
  next: string[]
}

interface Planned {
  machine: Machine
  text: string
  boot: { image: string; archive: string; source: string; digest: string }
  var: { image: string; archive: string; sizeBytes: number }
}

export function checkRegistry(registry: string): void {
  if (!REGISTRY.test(registry) || registry.length > 200) {
    throw new UserError(`--registry ${JSON.stringify(registry)} is not a registry reference (HOST[:PORT][/PATH], path in lowercase)`,
      'For example: --registry registry.example.com:5000/fleet')
  }
}

/** The desired export of each machine (or the named ones); reads machines/, the channels and the identities. */
export async function planExport(ctx: FleetContext, names: readonly string[], registry: string, out: string): Promise<Planned[]> {
  checkRegistry(registry)
  const machines = names.length ? await Promise.all(names.map((n) => loadMachine(ctx.paths, n))) : await loadAllMachines(ctx.paths)
  if (!machines.length) throw new UserError(`no machines in ${ctx.paths.machines}`, 'Create one with `fleet create-vm NAME`.')
  // A dry run (and plan) writes nothing, not even a first fleet id.
  const id = ctx.dryRun ? ((await readFleetId(ctx.paths)) ?? 'none-yet') : await fleetId(ctx.paths)
  const planned: Planned[] = []
  for (const m of machines) {
    const img = await resolveChannel(ctx.paths, m.base, m.name, m.arch)
    const bootTag = `sha256-${img.digest}`
    // The template holds no arch-specific bytes, but its image config names one: one per arch.
    const varTag = `${VAR_TEMPLATE_VERSION}-${m.varSizeBytes}${m.arch === 'x86_64' ? '' : `-${m.arch}`}`
    const boot = { image: `${registry}/fleet-base:${bootTag}`, archive: join(out, `fleet-base_${bootTag}.oci.tar`), source: img.path, digest: img.digest }
    const vart = { image: `${registry}/fleet-var:${varTag}`, archive: join(out, `fleet-var_${varTag}.oci.tar`), sizeBytes: m.varSizeBytes }
    const identity = await readIdentity(m, ctx.keyring)
    const list = exportList({ machine: m, fleetId: id, identity, bootImage: boot.image, varImage: vart.image })
    planned.push({ machine: m, text: `${JSON.stringify(list, null, 2)}\n`, boot, var: vart })
  }
  return planned
}

/** The redacted unified diff between an exported file's text and the desired one. */
export async function exportDiff(old: string | undefined, now: string, file: string): Promise<string[]> {
  const show = (t: string) => {
    try {
      return `${JSON.stringify(redactSecrets(JSON.parse(t) as Record<string, unknown>), null, 2)}\n`
    } catch {
      return '(not JSON)\n'
    }
  }
  return unifiedDiff(old === undefined ? '' : show(old), show(now), old === undefined ? '/dev/null' : file, file)
}

export async function readIfThere(file: string): Promise<string | undefined> {
  return existsSync(file) ? readFile(file, 'utf8') : undefined
}

export async function exportKubevirt(ctx: FleetContext, names: readonly string[], o: { registry: string; out: string; dryRun: boolean }): Promise<ExportResult> {
  const planned = await planExport(ctx, names, o.registry, o.out)
  const machines: ExportMachine[] = []
  for (const p of planned) {
    const file = join(o.out, `${p.machine.name}.json`)
    const old = await readIfThere(file)
    const status = old === undefined ? 'created' : old === p.text ? 'unchanged' : 'updated'
    machines.push({ name: p.machine.name, file, status, bootImage: p.boot.image, varImage: p.var.image, diff: await exportDiff(old, p.text, file) })
  }
  const boots = new Map(planned.map((p) => [p.boot.archive, p]))
  const vars = new Map(planned.map((p) => [p.var.archive, p]))
  const archives: ExportArchive[] = []
  const there = (f: string) => existsSync(f)
  if (o.dryRun) {
    for (const [f, p] of boots) archives.push({ file: f, image: p.boot.image, status: there(f) ? 'kept' : 'would write' })
    for (const [f, p] of vars) archives.push({ file: f, image: p.var.image, status: there(f) ? 'kept' : 'would write' })
  } else {
    await mkdir(o.out, { recursive: true, mode: 0o700 })
    await removeStaleTemps(o.out)
    for (const [f, p] of boots) {
      archives.push({ file: f, image: p.boot.image, status: there(f) ? 'kept' : 'written' })
      if (there(f)) continue
      ctx.log(`Writing the containerDisk of base image ${p.boot.digest.slice(0, 12)} to ${f}`)
      const spec = { source: p.boot.source, sha256: p.boot.digest, fileName: `${p.boot.digest}.qcow2`, arch: p.machine.arch, tag: p.boot.image.split(':').pop()! }
      await atomically(f, (tmp) => writeContainerDisk(spec, tmp))
    }
    for (const [f, p] of vars) {
      archives.push({ file: f, image: p.var.image, status: there(f) ? 'kept' : 'written' })
      if (there(f)) continue
      ctx.log(`Writing the /var template (${p.var.sizeBytes} bytes) to ${f}`)
      await atomically(f, async (tmp) => {
        const work = await mkdtemp(join(o.out, `.fleet-var-${process.pid}-`))
        try {
          await writeVarTemplate(join(work, 'var.qcow2'), p.var.sizeBytes, work)
          await writeContainerDisk({ source: join(work, 'var.qcow2'), fileName: 'var.qcow2', arch: p.machine.arch, tag: p.var.image.split(':').pop()! }, tmp)
        } finally {
          await rm(work, { recursive: true, force: true })
        }
      })
    }
    for (const [i, p] of planned.entries()) {
      step('export:manifest')
      // 0600: the Secret in it holds the host's private key.
      if (machines[i]!.status !== 'unchanged') await writeFileAtomic(machines[i]!.file, p.text, 0o600)
    }
  }
  const next = [
    ...archives.map((a) => `skopeo copy oci-archive:${a.file} docker://${a.image}`),
    `kubectl apply ${machines.map((m) => `-f ${m.file}`).join(' ')}`,
  ]
  return { out: o.out, registry: o.registry, dryRun: o.dryRun, machines, archives, next }
}

/** Writes `file` through a temp file next to it: complete, fsync'd, renamed; removed on failure or Ctrl-C. */
async function atomically(file: string, write: (tmp: string) => Promise<unknown>): Promise<void> {
  await withUndo(async (undo) => {
    const tmp = `${file}.tmp-${process.pid}`
    undo.add(`temporary file ${tmp}`, () => rm(tmp, { force: true }))
    step('export:archive')
    await write(tmp)
    await fsyncFile(tmp)
    step('export:archive-rename')
    await renameDurable(tmp, file)
  })
}

/** Temp files a killed export left (FILE.tmp-PID of a process that is gone, .fleet-var-* work folders). */
async function removeStaleTemps(out: string): Promise<void> {
  for (const f of await readdir(out)) {
    const m = /\.tmp-(\d+)$/.exec(f) ?? /^\.fleet-var-(\d+)-/.exec(f)
    if (m && !alive(Number(m[1]))) await rm(join(out, f), { recursive: true, force: true })
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}
