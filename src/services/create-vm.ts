// create-vm: definition (if missing) → boot overlay → /var disk with identity → XML → define
// (→ start). Every step registers its undo; a failure or Ctrl-C removes what this run made.
import type { VmName } from '../name.js'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm } from 'node:fs/promises'
import * as libvirt from '../adapters/libvirt.js'
import * as qemuImg from '../adapters/qemu-img.js'
import { UserError } from '../errors.js'
import { writeNewMachine, type NewMachineSpec } from '../machines/new-machine.js'
import { checkMachineOnHost, FIELD_FLAGS, validateFields } from '../machines/spec-checks.js'
import { loadAllMachines, loadMachine, machineDir, readIdentity, assertName } from '../machines/repository.js'
import { vmFiles } from '../repo.js'
import { resolveChannel } from '../store/images.js'
import { withUndo } from '../util/undo.js'
import { withLock } from '../util/lock.js'
import { writeFileAtomic } from '../util/fsx.js'
import type { FleetContext } from './context.js'
import { machineXml, xmlPath } from './domain-xml.js'
import { createVarDisk, varDiskMethod } from './var-disk.js'
import { startVm } from './lifecycle.js'
import { manifestOf, writeManifest } from './identity-manifest.js'
import { findFirmware } from '../firmware.js'
import { hostFacts, resolveNewMachineSpec, type NewMachineRequest } from './new-machine-spec.js'

export interface CreateVmResult {
  name: string
  definition: 'created' | 'existing'
  machineDir: string
  baseDigest: string
  boot: string
  var: string
  xml: string
  defined: boolean
  started: boolean
  dryRun: boolean
  timings: Record<string, number>
}

export async function createVm(ctx: FleetContext, name: VmName, req: NewMachineRequest, opts: { start: boolean }): Promise<CreateVmResult> {
  assertName(name)
  const { paths } = ctx
  const dir = machineDir(paths, name)
  const files = vmFiles(paths, name)
  const isNew = !existsSync(dir)
  const host = await hostFacts()
  // Bad flags and a broken fleet (any bad machine.json, a shared MAC or UUID) fail before any question.
  const fleet = await loadAllMachines(paths)
  if (isNew) await validateFields(name, req.given, host)
  else {
    const ignored = Object.entries(req.given).filter(([, v]) => v !== undefined).map(([k]) => `--${FIELD_FLAGS[k as keyof NewMachineSpec]}`)
    if (ignored.length) ctx.log(`Note: ${dir} exists, so ${ignored.join(' ')} ${ignored.length > 1 ? 'are' : 'is'} not used; its machine.json and identity files are.`)
  }
  if (await libvirt.domainState(name)) {
    throw new UserError(`machine ${name}: a libvirt domain named ${name} already exists`, `Use \`fleet start-vm ${name}\`, or \`fleet destroy-vm ${name}\` first.`)
  }
  for (const f of [files.boot, files.var]) {
    if (existsSync(f)) throw new UserError(`machine ${name}: ${f} already exists`, f === files.var ? `That is the VM's kept /var disk: \`fleet destroy-vm ${name} --delete-data\` removes it, or move it away.` : `Remove the leftover with \`fleet destroy-vm ${name}\`.`)
  }
  const spec = isNew ? await resolveNewMachineSpec(paths, name, req, host) : undefined
  // The flags were checked above; now what the prompts and defaults added.
  if (spec) await validateFields(name, notGiven(spec, req.given), host)
  // loadMachine only for the error it gives when machines/NAME has no machine.json.
  const existing = spec ? undefined : (fleet.find((m) => m.name === name) ?? await loadMachine(paths, name))
  let existingIdentity: Map<string, Buffer> | undefined
  if (existing) {
    checkMachineOnHost(existing, host)
    // Hand-edited identity files get the same checks as the flags that write them, before anything is made.
    existingIdentity = await readIdentity(existing)
  }
  const { base: channel, arch } = spec ?? existing!
  const image = await resolveChannel(paths, channel, name, arch)
  findFirmware(arch) // fail before touching anything if there is no firmware
  const result: CreateVmResult = {
    name, definition: isNew ? 'created' : 'existing', machineDir: dir, baseDigest: image.digest,
    boot: files.boot, var: files.var, xml: xmlPath(paths, name), defined: false, started: false, dryRun: ctx.dryRun, timings: {},
  }
  if (ctx.dryRun) return result

  const t = (k: string, t0: number) => (result.timings[k] = Math.round(performance.now() - t0))
  await mkdir(paths.vms, { recursive: true, mode: 0o755 })
  return withLock(files.lock, `machine ${name}`, () => withUndo(async (undo) => {
    let t0 = performance.now()
    if (spec) {
      ctx.log(`Writing ${dir}`)
      await writeNewMachine(paths, name, spec)
      undo.add(`definition ${dir}`, () => rm(dir, { recursive: true, force: true }))
      t('definition', t0)
    }
    const machine = existing ?? await loadMachine(paths, name)
    const identity = existingIdentity ?? await readIdentity(machine)
    if (!existsSync(files.dir)) {
      await mkdir(files.dir, { recursive: true, mode: 0o755 })
      undo.add(`folder ${files.dir}`, () => rm(files.dir, { recursive: true, force: true }))
    }
    t0 = performance.now()
    ctx.log(`Creating boot overlay on ${channel} (${image.digest.slice(0, 12)})`)
    await qemuImg.createOverlay(files.boot, image.path)
    undo.add(`boot overlay ${files.boot}`, () => rm(files.boot, { force: true }))
    t('bootOverlay', t0)
    t0 = performance.now()
    ctx.log(`Creating /var disk (${machine.varSize}, ${varDiskMethod()}) with identity`)
    undo.add(`/var disk ${files.var}`, () => rm(files.var, { force: true }))
    await createVarDisk(files.var, machine.varSizeBytes, identity)
    await writeManifest(files.dir, manifestOf(identity))
    t('varDisk', t0)
    t0 = performance.now()
    const xml = await machineXml(ctx, machine, image.digest)
    const oldXml = existsSync(result.xml) ? await readFile(result.xml, 'utf8') : undefined
    await writeFileAtomic(result.xml, xml)
    undo.add(`XML ${result.xml}`, () => (oldXml === undefined ? rm(result.xml, { force: true }) : writeFileAtomic(result.xml, oldXml)))
    t('xml', t0)
    t0 = performance.now()
    ctx.log(`Defining domain ${name} (${await ctx.virtType()})`)
    await libvirt.defineXml(xml)
    undo.add(`domain ${name}`, () => libvirt.undefineWithNvram(name))
    result.defined = true
    t('define', t0)
    if (opts.start) {
      t0 = performance.now()
      await startVm(ctx, name)
      undo.add(`running domain ${name}`, () => libvirt.destroy(name))
      result.started = true
      t('start', t0)
    }
    return result
  }))
}

/** The fields of `spec` the flags did not give. */
function notGiven(spec: NewMachineSpec, given: Partial<NewMachineSpec>): Partial<NewMachineSpec> {
  return Object.fromEntries(Object.entries(spec).filter(([k]) => given[k as keyof NewMachineSpec] === undefined)) as Partial<NewMachineSpec>
}
