// create-vm: definition (if missing) → boot overlay → /var disk with identity → XML → define
// (→ start), under the VM's lock and an intent record. A failure, Ctrl-C or SIGTERM removes what
// this run made; after a kill -9 the next command touching the VM does (src/ops/recovery.ts).
import { task } from '../util/progress.js'
import type { VmName } from '../name.js'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { chmod, readFile, rm } from 'node:fs/promises'
import { hostDomainTexts, hostUserOf, type HostDomainText } from '../adapters/libvirt-host.js'
import { checkQemuCanReach, makeVmDirs, VM_DISK_MODE } from './permissions.js'
import * as libvirt from '../adapters/libvirt.js'
import { UserError } from '../errors.js'
import { ensureHostKeyPair, writeNewMachine } from '../machines/new-machine.js'
import { fieldOf, type HostFacts, type NewMachineSpec } from '../machines/fields.js'
import { checkMachineOnHost, validateFields } from '../machines/spec-checks.js'
import { loadAllMachines, loadMachine, machineDir, readIdentity } from '../machines/repository.js'
import { vmFiles, type Paths, type VmFiles } from '../repo.js'
import { resolveChannel } from '../store/images.js'
import { createOverlay } from '../store/qcow2-overlay.js'
import { RolledBack } from '../util/undo.js'
import { beginUndo, endUndo, step } from '../util/interrupt.js'
import { beginIntent, vmTarget } from '../ops/intent.js'
import { undoCreate, type CreateData } from '../ops/recovery.js'
import { makeScratch, nestedScratch, type Scratch } from '../ops/scratch.js'
import { recoverFirst, withStore, withVms } from '../ops/vm-op.js'
import { writeFileAtomic } from '../util/fsx.js'
import type { FleetContext } from './context.js'
import { machineXml, xmlPath } from './domain-xml.js'
import { createVarDisk, resyncIdentity, varDiskMethod } from './var-disk.js'
import { startVm } from './lifecycle.js'
import { manifestOf, writeManifest } from './identity-manifest.js'
import { findFirmware } from '../firmware.js'
import { defaultAdminLogin, type AdminLogin } from './login-key.js'
import { createRemote, remoteHost } from './remote-vm.js'
import { vmVolumes } from './remote-disks.js'
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
  /** The /var disk a destroy-vm kept was reused (data kept, identity resynced). */
  varReused: boolean
  /** machines/NAME existed without an SSH host key pair, and create-vm made one (would, in a dry run). */
  hostKeyMade?: boolean
  /** A new machine given no admin key: which key logs in (yours, or fleet's pair `fleet ssh` uses). */
  login?: AdminLogin
  dryRun: boolean
  timings: Record<string, number>
}

/**
 * Host facts a batch of creates (create-vm with several names, apply) reads once instead of per
 * VM: the host's networks, its domains' XML (MACs and UUIDs in use), qemu's access to the state directory.
 * Each create still checks its own VM under its lock.
 */
export interface CreateBatch {
  host?: Promise<HostFacts>
  /** Keyed by the libvirt URI of the host ('' for this one). */
  domains?: Map<string, Promise<HostDomainText[]>>
  reach?: Promise<void>
  /** The batch's scratch folder (withCreateBatch): each create works in a folder of its own inside it. */
  scratch?: () => Promise<Scratch>
}

/**
 * Runs `fn` with a batch whose creates share one scratch folder, made on first use and removed at
 * the end (one lock for all of them instead of one each; a killed fleet's is swept as any other).
 */
export async function withCreateBatch<T>(paths: Paths, fn: (batch: CreateBatch) => Promise<T>): Promise<T> {
  let made: Promise<Scratch> | undefined
  try {
    return await fn({ scratch: () => (made ??= makeScratch(paths, 'create')) })
  } finally {
    if (made) await (await made.catch(() => undefined))?.remove()
  }
}

export async function createVm(ctx: FleetContext, name: VmName, req: NewMachineRequest, opts: { start: boolean }, batch: CreateBatch = {}): Promise<CreateVmResult> {
  const { paths } = ctx
  const dir = machineDir(paths, name)
  const files = vmFiles(paths, name)
  // What a killed run left of this VM is resolved before anything is looked at.
  await recoverFirst(ctx, [name])
  const isNew = !existsSync(dir)
  const host = await (batch.host ??= hostFacts())
  // Bad flags and a broken fleet (any bad machine.json, a shared MAC or UUID) fail before any question.
  const fleet = await loadAllMachines(paths)
  if (isNew) await validateFields(name, req.given, host)
  else {
    const ignored = Object.entries(req.given).filter(([, v]) => v !== undefined).map(([k]) => `--${fieldOf(k as keyof NewMachineSpec).flag}`)
    if (ignored.length) ctx.log(`Note: ${dir} exists, so ${ignored.join(' ')} ${ignored.length > 1 ? 'are' : 'is'} not used; its machine.json and identity files are.`)
  }
  await checkNothingThere(name, files) // early, before any question; again under the lock
  const spec = isNew ? await resolveNewMachineSpec(paths, name, req, host) : undefined
  // No admin key chosen (none given, none picked at the prompt): log in with yours, or fleet's pair.
  // Only looked up here: a fleet pair that has to be made is made after the last check below.
  let login = spec && req.given.adminKeys === undefined && !spec.adminKeys.length ? await defaultAdminLogin(paths, true) : undefined
  if (spec && login?.key) spec.adminKeys = [login.key]
  // The flags were checked above; now what the prompts and defaults added.
  if (spec) await validateFields(name, notGiven(spec, req.given), host)
  // loadMachine only for the error it gives when machines/NAME has no machine.json.
  const existing = spec ? undefined : (fleet.find((m) => m.name === name) ?? await loadMachine(paths, name))
  let existingIdentity: Map<string, Buffer> | undefined
  const result0: Pick<CreateVmResult, 'hostKeyMade' | 'login'> = {}
  const { base: channel, arch } = spec ?? existing!
  const image = await resolveChannel(paths, channel, name, arch)
  findFirmware(arch) // fail before touching anything if there is no firmware
  // A VM on a remote host: its disks are volumes there (remote-vm.ts), nothing under vms/ here.
  const remote = remoteHost(spec ?? existing!)
  // qemu's user must reach the disks, or the VM would only fail at start with "Permission denied".
  if (!ctx.dryRun && !remote) await (batch.reach ??= checkQemuCanReach([paths.images, paths.vms]))
  if (spec && login?.created && !ctx.dryRun) {
    login = await defaultAdminLogin(paths, false)
    spec.adminKeys = [login.key]
  }
  if (existing) {
    checkMachineOnHost(existing, host)
    // What this run adds to an existing definition is removed again if the definition is then refused.
    const made: string[] = []
    // No host key pair (private keys stay out of git; an example fleet has none): make one and say so.
    const keyMissing = !existsSync(join(dir, 'ssh_host_ed25519_key.pub')) && !existsSync(join(dir, 'ssh_host_ed25519_key')) && !existsSync(join(dir, 'ssh_host_ed25519_key.age'))
    const madeKey = keyMissing && !ctx.dryRun ? await ensureHostKeyPair(paths, name, dir) : undefined
    if (madeKey) made.push(join(dir, 'ssh_host_ed25519_key'), join(dir, 'ssh_host_ed25519_key.age'), join(dir, 'ssh_host_ed25519_key.pub'))
    if (keyMissing) {
      ctx.log(madeKey
        ? `machine ${name}: ${dir} had no SSH host key pair; made a new one (ssh_host_ed25519_key${existsSync(join(dir, 'ssh_host_ed25519_key.age')) ? '.age, encrypted' : ''} and .pub). Commit the .pub${existsSync(join(dir, 'ssh_host_ed25519_key.age')) ? ' and the .age' : '; keep the private key out of git'}.`
        : `machine ${name}: ${dir} has no SSH host key pair; create-vm would make a new one`)
      result0.hostKeyMade = true
    }
    // Hand-edited identity files get the same checks as the flags that write them, before anything is made.
    // No admin_authorized_keys at all (an example definition): the zero-configuration login key
    // goes there, as for a new machine. An empty file is a choice (no admin login) and stays.
    const adminKeys = join(dir, 'admin_authorized_keys')
    if (!existsSync(adminKeys) && !existsSync(`${adminKeys}.age`)) {
      const l = await defaultAdminLogin(paths, ctx.dryRun)
      if (!ctx.dryRun) {
        await writeFileAtomic(adminKeys, `${l.key}\n`)
        made.push(adminKeys)
      }
      ctx.log(`machine ${name}: ${dir} had no admin_authorized_keys; ${ctx.dryRun ? 'would write' : 'wrote'} ${l.source === 'user' ? `your key ${l.file}` : `fleet's login key ${l.file}`} there`)
      result0.login = l
    }
    try {
      // A dry run that would make the missing host key pair has no pair to check yet.
      if (!(ctx.dryRun && keyMissing)) existingIdentity = await readIdentity(existing, ctx.keyring, madeKey ? new Map([['ssh_host_ed25519_key', madeKey]]) : undefined)
      // A definition from git may carry a MAC or UUID another domain on its host already uses.
      const key = remote?.uri ?? ''
      const texts = (batch.domains ??= new Map())
      if (!texts.has(key)) texts.set(key, hostDomainTexts(remote?.uri))
      const onHost = await texts.get(key)!
      const where = remote ? `on ${remote.uri}` : 'on this host'
      const macUser = hostUserOf(onHost, 'mac', existing.mac, name)
      if (macUser) throw new UserError(`machine ${name}: MAC ${existing.mac} in machine.json is already used by the libvirt domain ${macUser} ${where}`, `Give ${name} another MAC (delete the "mac" line; \`fleet create-vm\` of a new definition picks a random free one).`)
      const uuidUser = hostUserOf(onHost, 'uuid', existing.uuid, name)
      if (uuidUser) throw new UserError(`machine ${name}: UUID ${existing.uuid} in machine.json is already used by the libvirt domain ${uuidUser} ${where}`, 'Give it another UUID (e.g. from `uuidgen`).')
    } catch (e) {
      for (const f of made) await rm(f, { force: true })
      throw e
    }
  }
  const result: CreateVmResult = {
    name, definition: isNew ? 'created' : 'existing', machineDir: dir, baseDigest: image.digest,
    boot: files.boot, var: files.var, xml: xmlPath(paths, name), defined: false, started: false, varReused: existsSync(files.var), dryRun: ctx.dryRun, timings: {}, ...(login ? { login } : {}), ...result0,
  }
  if (ctx.dryRun) return result

  const t = (k: string, t0: number) => (result.timings[k] = Math.round(performance.now() - t0))
  return withVms(ctx, [name], async () => {
    // The checks again, now under the lock: another create-vm of this name may have won.
    if (isNew && existsSync(dir)) throw new UserError(`machine ${name}: ${dir} was created by another fleet process meanwhile; nothing was changed`, `Look at it, then \`fleet create-vm ${name}\` uses it as it is.`)
    await checkNothingThere(name, files)
    const oldXml = existsSync(result.xml) ? await readFile(result.xml, 'utf8') : undefined
    const scratch = remote ? undefined : batch.scratch ? await nestedScratch(await batch.scratch(), name) : await makeScratch(paths, `create-${name}`)
    const data: CreateData = { newDefinition: Boolean(spec), xmlBefore: oldXml ?? null, consoleBefore: existsSync(files.console), varBefore: existsSync(files.var), dirBefore: existsSync(files.dir),
      ...(remote ? { remote: { varBefore: (await vmVolumes(remote, name)).varComplete } } : {}) }
    const intent = await beginIntent(paths, vmTarget(name), 'create', 'started', data)
    try {
      let t0 = performance.now()
      step('create:definition')
      let written: Awaited<ReturnType<typeof writeNewMachine>> | undefined
      if (spec) {
        ctx.log(`Writing ${dir}`)
        written = await writeNewMachine(paths, name, spec)
        if (!written.hostKey) ctx.log(`Note: this repository has no .fleet/recipients, so ${dir}/ssh_host_ed25519_key is a plaintext file git ignores; \`fleet secrets migrate\` encrypts the host keys so they can be committed.`)
        t('definition', t0)
      }
      const machine = existing ?? await loadMachine(paths, name)
      // A new machine's host key is at hand (only its .age is on disk): no need to decrypt it.
      const identity = existingIdentity ?? await readIdentity(machine, ctx.keyring, written?.hostKey ? new Map([['ssh_host_ed25519_key', written.hostKey]]) : undefined)
      if (remote) {
        step('create:remote')
        // Shared store lock: gc cannot delete the image while it is shipped to the host.
        const made = await withStore(ctx, 'shared', async () => {
          const now = await resolveChannel(paths, channel, name, arch)
          result.baseDigest = now.digest
          return createRemote(ctx, machine, identity, now, opts.start)
        })
        await writeFileAtomic(result.xml, made.xml)
        Object.assign(result, { boot: made.boot, var: made.var, varReused: made.varReused, defined: true, started: opts.start })
        step('create:commit')
        await intent.done()
        return result
      }
      // vms/ and vms/NAME/: root and qemu's group only (0710), see services/permissions.ts.
      await makeVmDirs(paths.vms, name)
      step('create:boot-overlay')
      t0 = performance.now()
      ctx.log(`Creating boot overlay on ${channel} (${image.digest.slice(0, 12)})`)
      // Shared store lock: gc cannot delete the image between the channel lookup and the overlay.
      await withStore(ctx, 'shared', async () => {
        const now = await resolveChannel(paths, channel, name, arch)
        await createOverlay(files.boot, now.path)
        await chmod(files.boot, VM_DISK_MODE)
        result.baseDigest = now.digest
      })
      t('bootOverlay', t0)
      step('create:var-disk')
      t0 = performance.now()
      await ctx.virtType() // decides whether an appliance may use KVM (a useless /dev/kvm hangs it)
      if (data.varBefore) {
        // The /var disk destroy-vm kept: its data stays, its identity is made to match machines/NAME.
        result.varReused = true
        await task(ctx.log, `Reusing the kept /var disk ${files.var}; resyncing its identity`, () => resyncIdentity([{ file: files.var, identity }], scratch!.dir, ctx.log))
      } else {
        await task(ctx.log, `Creating /var disk (${machine.varSize}, ${varDiskMethod()}) with identity`,
          () => createVarDisk(files.var, machine.varSizeBytes, identity, varDiskMethod(), scratch!.dir))
      }
      await writeManifest(files.dir, manifestOf(identity))
      t('varDisk', t0)
      step('create:xml')
      t0 = performance.now()
      const xml = await machineXml(ctx, machine, result.baseDigest)
      await writeFileAtomic(result.xml, xml)
      t('xml', t0)
      step('create:define')
      t0 = performance.now()
      ctx.log(`Defining domain ${name} (${await ctx.virtType()})`)
      await libvirt.defineXml(xml)
      result.defined = true
      t('define', t0)
      if (opts.start) {
        step('create:start')
        t0 = performance.now()
        await startVm(ctx, name)
        result.started = true
        t('start', t0)
      }
      step('create:commit')
      await intent.done()
      return result
    } catch (e) {
      beginUndo(() => ['the VM this run created'])
      const undo = await undoCreate(ctx, name, data)
      await undo.rollback()
      endUndo()
      // A complete undo ends the operation; otherwise the record stays for the next command.
      if (!undo.leftBehind.length) await intent.done()
      throw new RolledBack(e, undo)
    } finally {
      await scratch?.remove()
    }
  })
}

/**
 * No domain and no boot overlay of that name. A /var disk may be there: the one `destroy-vm`
 * kept, which create-vm reuses (its identity resynced), never overwrites.
 */
async function checkNothingThere(name: VmName, files: VmFiles): Promise<void> {
  if (await libvirt.domainState(name)) {
    throw new UserError(`machine ${name}: a libvirt domain named ${name} already exists`, `Use \`fleet start-vm ${name}\`, or \`fleet destroy-vm ${name}\` first (it keeps /var).`)
  }
  if (existsSync(files.boot)) {
    throw new UserError(`machine ${name}: ${files.boot} already exists, but no domain uses it`, existsSync(files.var) ? `Its disks are all there: \`fleet define-vm ${name}\` defines the domain again.` : `Remove the leftover overlay with \`fleet destroy-vm ${name}\`.`)
  }
}

/** The fields of `spec` the flags did not give. */
function notGiven(spec: NewMachineSpec, given: Partial<NewMachineSpec>): Partial<NewMachineSpec> {
  return Object.fromEntries(Object.entries(spec).filter(([k]) => given[k as keyof NewMachineSpec] === undefined)) as Partial<NewMachineSpec>
}
