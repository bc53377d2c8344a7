// fleet upgrade: for each VM that differs from its definition (base behind its channel, identity
// or XML changed), all or nothing per VM, under its lock and an intent record:
//   stop → new boot overlay beside the old (boot.qcow2.next) → identity resynced (all disks in
//   ONE appliance launch; written beside the old identity and swapped) → define → switch
//   overlays (old one kept as .previous for rollback) → restart if it ran.
// A VM that does not stop or fails ends on its old overlay and definition, running if it ran,
// and does not keep the others down. A VM already in sync is left alone (its rollback point too).
// Rolling: running VMs go in waves of at most maxUnavailable; each restarted VM must pass its
// health check before the next wave starts. One that fails it is rolled back to its previous
// overlay, restarted and checked again, and the rollout stops there. Stopped VMs go last, in
// one batch, without being started (only after every running VM came back healthy).
import { task } from '../util/progress.js'
import { existsSync } from 'node:fs'
import { chmod, readFile, rm } from 'node:fs/promises'
import * as libvirt from '../adapters/libvirt.js'
import * as qemuImg from '../adapters/qemu-img.js'
import { UserError } from '../errors.js'
import type { Machine } from '../machines/model.js'
import { listMachineNames, loadMachine, readIdentity } from '../machines/repository.js'
import { remoteMachine } from './remote-vm.js'
import { upgradeWithRemote } from './remote-upgrade.js'
import { vmName, vmNames, type VmName } from '../name.js'
import { beginIntent, vmTarget, type IntentHandle } from '../ops/intent.js'
import { finishSwap, nextOverlay, previousOverlay } from '../ops/overlays.js'
import type { UpgradeData } from '../ops/recovery.js'
import { makeScratch } from '../ops/scratch.js'
import { recoverFirst, withStore, withVms } from '../ops/vm-op.js'
import { vmFiles, type VmFiles } from '../repo.js'
import { resolveChannel } from '../store/images.js'
import { createOverlay } from '../store/qcow2-overlay.js'
import { renameDurable, writeFileAtomic } from '../util/fsx.js'
import { step } from '../util/interrupt.js'
import type { FleetContext } from './context.js'
import { currentBaseDigest, machineXml, xmlPath } from './domain-xml.js'
import { diffManifest, manifestOf, readManifest, type IdentityDiff } from './identity-manifest.js'
import { waitOff } from './lifecycle.js'
import { assertOwned } from './ownership.js'
import { VM_DISK_MODE } from './permissions.js'
import { consoleMark, describeHealth } from './health.js'
import { checkWave, type Planned } from './upgrade-check.js'
import { DEFAULT_KEEP, finishSwitch } from './upgrade-switch.js'
import { resyncIdentity } from './var-disk.js'
import { inParallel } from './var-disk-rules.js'
import { upgradeFailed, waves, type UpgradeOptions, type UpgradePlan, type UpgradeResult, type UpgradeVmResult } from './upgrade-plan.js'
import { unifiedDiff } from '../util/unified-diff.js'

export { upgradeFailed, type UpgradeOptions, type UpgradeResult, type UpgradeVmResult } from './upgrade-plan.js'

async function planVm(ctx: FleetContext, m: Machine): Promise<Planned> {
  const files = vmFiles(ctx.paths, m.name)
  if (!existsSync(files.boot) || !existsSync(files.var)) {
    const missing = [files.boot, files.var].filter((f) => !existsSync(f)).join(' and ')
    throw new UserError(`machine ${m.name}: ${missing} missing, so there is no VM to upgrade`, existsSync(files.var) ? `\`fleet create-vm ${m.name}\` makes a new boot overlay; the /var disk must first be moved aside, fleet never overwrites it.` : `Create the VM first: fleet create-vm ${m.name}`)
  }
  // Another fleet's (or a hand-made) domain of this name is refused before anything changes.
  await assertOwned(ctx.paths, m.name, { adopt: ctx.adopt, log: ctx.log })
  const image = await resolveChannel(ctx.paths, m.base, m.name, m.arch)
  const identity = await readIdentity(m, ctx.keyring)
  const baseFrom = await currentBaseDigest(ctx.paths, m)
  const xml = await machineXml(ctx, m, image.digest)
  const xmlFile = xmlPath(ctx.paths, m.name)
  const oldXml = existsSync(xmlFile) ? await readFile(xmlFile, 'utf8') : null
  return {
    machine: m, files, identity, xml, oldXml, image: image.path,
    plan: {
      name: m.name, baseFrom, baseTo: image.digest,
      identity: diffManifest(await readManifest(files.dir), manifestOf(identity)),
      xmlChanged: oldXml !== xml, xmlDiff: await unifiedDiff(oldXml ?? '', xml, `libvirt/${m.name}.xml`, `libvirt/${m.name}.xml (after upgrade)`),
      wasRunning: await libvirt.isActive(m.name),
    },
  }
}

const identityChanged = (d: IdentityDiff) => d.added.length + d.changed.length + d.removed.length > 0
const needsWork = (p: UpgradePlan) => p.baseFrom !== p.baseTo || identityChanged(p.identity) || p.xmlChanged

export async function upgrade(ctx: FleetContext, names: string[], opts: UpgradeOptions): Promise<UpgradeResult> {
  const maxUnavailable = opts.maxUnavailable ?? 1
  if (!Number.isInteger(maxUnavailable) || maxUnavailable < 1) throw new UserError(`--max-unavailable ${maxUnavailable}: must be a whole number of VMs, at least 1`)
  const healthTimeoutS = opts.healthTimeoutS ?? 300
  if (!Number.isFinite(healthTimeoutS) || healthTimeoutS <= 0) throw new UserError(`--health-timeout ${healthTimeoutS}: must be a number of seconds above 0`)
  const check = opts.health ?? { kind: 'agent' }
  if (opts.keep !== undefined && (!Number.isInteger(opts.keep) || opts.keep < 1)) throw new UserError(`--keep ${opts.keep}: must be a whole number of rollback points, at least 1`)
  const list = opts.all ? (await listMachineNames(ctx.paths)).map(vmName) : vmNames(names)
  if (!list.length) throw new UserError(opts.all ? `no machines in ${ctx.paths.machines}` : 'name the machines to upgrade, or pass --all')
  // VMs on remote hosts go first, in their own waves (remote-upgrade.ts); then the rest as below.
  const remote = (await Promise.all(list.map((n) => remoteMachine(ctx.paths, n)))).filter((m): m is Machine => m !== undefined)
  if (remote.length) return upgradeWithRemote(ctx, list, remote, opts, (rest) => upgrade(ctx, rest, { ...opts, all: false }))
  await recoverFirst(ctx, list)
  const timings: Record<string, number> = {}
  const base = { health: describeHealth(check), maxUnavailable, timings }
  if (ctx.dryRun) {
    const plans = await Promise.all(list.map(async (n) => planVm(ctx, await loadMachine(ctx.paths, n))))
    waves(plans.filter((p) => needsWork(p.plan)), maxUnavailable).forEach((w, i) => w.forEach((p) => (p.wave = i + 1)))
    return { ...base, dryRun: true, vms: plans.map((p) => ({ ...p.plan, outcome: needsWork(p.plan) ? 'would upgrade' : 'unchanged', restarted: false, image: p.plan.baseFrom, wave: p.wave })) }
  }
  // VM locks (sorted), then the store shared: gc cannot delete the target images meanwhile.
  return withVms(ctx, list, () => withStore(ctx, 'shared', async () => {
    // Named VMs that cannot be planned stop the command before anything changes; with --all, a
    // machine that cannot be upgraded (no VM yet, a foreign domain) is reported and the rest go on.
    const planned = await Promise.all(list.map(async (n) => {
      try {
        return await planVm(ctx, await loadMachine(ctx.paths, n))
      } catch (e) {
        if (!opts.all || !(e instanceof UserError)) throw e
        return { name: n, error: e }
      }
    }))
    const plans = planned.filter((p): p is Planned => !('error' in p))
    const skipped = planned.filter((p): p is { name: VmName; error: UserError } => 'error' in p)
    for (const p of skipped) ctx.log(`${p.name}: not upgraded: ${p.error.message}`)
    for (const p of plans) if (!needsWork(p.plan)) p.result = { ...p.plan, outcome: 'unchanged', restarted: false, image: p.plan.baseFrom }
    const scratch = await makeScratch(ctx.paths, 'upgrade')
    let stopped: string | undefined
    try {
      const all = waves(plans.filter((p) => !p.result), maxUnavailable)
      for (const [i, wave] of all.entries()) {
        for (const p of wave) p.wave = i + 1
        if (stopped) continue
        // Its state now, not at planning: earlier waves took time.
        for (const p of wave) p.plan.wasRunning = await libvirt.isActive(p.plan.name)
        if (all.length > 1) ctx.log(`Wave ${i + 1} of ${all.length}: ${wave.map((p) => p.plan.name).join(', ')}`)
        await doUpgrade(ctx, wave, opts, timings, scratch.dir)
        await checkWave(ctx, wave, check, { ...opts, healthTimeoutS })
        const bad = wave.filter((p) => upgradeFailed(p.result!))
        if (bad.length) stopped = `the rollout stopped after wave ${i + 1}: ${bad.map((p) => `${p.plan.name} ${p.result!.outcome}${p.result!.healthy === false ? ', unhealthy' : ''}`).join('; ')}`
      }
    } finally {
      await scratch.remove()
    }
    for (const p of plans.filter((x) => !x.result)) {
      p.result = { ...p.plan, outcome: 'not started', restarted: false, image: p.plan.baseFrom, wave: p.wave, state: `not touched: ${stopped}` }
    }
    if (stopped) ctx.log(stopped)
    const notPlanned: UpgradeVmResult[] = skipped.map((p) => ({
      name: p.name, baseFrom: 'unknown', baseTo: 'unknown', identity: { added: [], changed: [], removed: [] }, xmlChanged: false, xmlDiff: [], wasRunning: false,
      outcome: 'failed', restarted: false, error: p.error.message, state: 'not touched', image: 'unknown',
    }))
    const vms = [...plans.map((p) => ({ ...p.result!, wave: p.wave })), ...notPlanned].sort((x, y) => (x.name < y.name ? -1 : 1))
    return { ...base, dryRun: false, vms, ...(stopped ? { stopped } : {}) }
  }))
}

/** Ends one VM's upgrade as failed: its new overlay removed, old definition kept, restarted if it ran. */
async function fail(ctx: FleetContext, p: Planned, why: string, stillRunning = false): Promise<void> {
  const notes: string[] = []
  await rm(nextOverlay(p.files), { force: true })
  let restarted = false
  if (p.plan.wasRunning && !stillRunning && !(await libvirt.isActive(p.plan.name))) {
    restarted = await libvirt.start(p.plan.name).then(() => true, (e: Error) => {
      notes.push(`restart failed: ${e.message}`)
      return false
    })
  }
  await p.intent?.done()
  const running = stillRunning || restarted
  p.result = { ...p.plan, outcome: 'failed', restarted, image: p.plan.baseFrom, error: why, state: `on its old image ${p.plan.baseFrom.slice(0, 12)}, ${running ? 'running' : 'stopped'}${notes.length ? `; ${notes.join('; ')}` : ''}` }
  ctx.log(`${p.plan.name}: upgrade FAILED: ${why} (${p.result.state})`)
}

async function doUpgrade(ctx: FleetContext, plans: Planned[], opts: { timeoutS: number; force: boolean; keep?: number }, timings: Record<string, number>, tmp: string): Promise<void> {
  const time = async <T>(k: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now()
    try {
      return await f()
    } finally {
      timings[k] = (timings[k] ?? 0) + Math.round(performance.now() - t0)
    }
  }
  const live = () => plans.filter((p) => !p.result)

  await time('shutdown', async () => {
    for (const p of live()) {
      p.intent = await beginIntent<UpgradeData>(ctx.paths, vmTarget(p.plan.name), 'upgrade', 'stopping', {
        wasRunning: p.plan.wasRunning, from: p.plan.baseFrom, to: p.plan.baseTo, newOverlay: p.plan.baseFrom !== p.plan.baseTo,
        identityChanged: identityChanged(p.plan.identity), manifest: manifestOf(p.identity), xml: p.xml, oldXml: p.oldXml,
        keep: opts.keep ?? DEFAULT_KEEP,
      })
      step('upgrade:stop')
      if (p.plan.wasRunning) {
        await p.intent.phase('stopping', { stopRequestedAt: Date.now(), stopTimeoutS: opts.timeoutS })
        ctx.log(`Shutting down ${p.plan.name} (ACPI, up to ${opts.timeoutS}s)`)
        await libvirt.shutdown(p.plan.name)
        step('upgrade:stop-requested')
      }
    }
    await Promise.all(live().map(async (p) => {
      if (!p.plan.wasRunning || (await waitOff(p.plan.name, opts.timeoutS * 1000))) return
      if (!opts.force) return fail(ctx, p, `still running ${opts.timeoutS}s after the shutdown request (pass --force to power it off, or a longer --timeout)`, true)
      ctx.log(`${p.plan.name}: still running after ${opts.timeoutS}s; powering it off (--force)`)
      await p.intent!.phase('stopping', { destroying: true })
      await libvirt.destroy(p.plan.name)
    }))
    // Each VM on its own from here to the identity step: side by side (spawning tools is the cost).
    await inParallel(live(), async (p) => {
      if (await qemuImg.isLocked(p.files.var)) await fail(ctx, p, `${p.files.var} is in use by another process`)
    })
  })

  await time('overlays', async () => {
    await inParallel(live(), async (p) => {
      step('upgrade:overlay')
      try {
        if (p.intent!.data.newOverlay) {
          await rm(nextOverlay(p.files), { force: true })
          await createOverlay(nextOverlay(p.files), p.image)
          await chmod(nextOverlay(p.files), VM_DISK_MODE)
        }
        await p.intent!.phase('prepared')
      } catch (e) {
        await fail(ctx, p, `new boot overlay: ${(e as Error).message}`)
      }
    })
  })

  await time('identity', async () => {
    const todo = live().filter((p) => p.intent!.data.identityChanged)
    if (!todo.length) return
    // From here on an interruption rolls forward: the resync is the commit point.
    for (const p of todo) await p.intent!.phase('identity')
    step('upgrade:identity')
    try {
      await task(ctx.log, `Resyncing identity on ${todo.length} /var disk(s) at once`,
        () => resyncIdentity(todo.map((p) => ({ file: p.files.var, identity: p.identity })), tmp, ctx.log))
    } catch (e) {
      if (todo.length === 1) return fail(ctx, todo[0]!, `identity resync: ${(e as Error).message}; /var/identity holds the old or the new identity, complete`)
      // One bad disk must not fail the others: each alone, to find which.
      ctx.log(`Resync of ${todo.length} disks together failed (${(e as Error).message}); trying each disk alone`)
      for (const p of todo) {
        await resyncIdentity([{ file: p.files.var, identity: p.identity }], tmp)
          .catch((err: Error) => fail(ctx, p, `identity resync: ${err.message}; /var/identity holds the old or the new identity, complete`))
      }
    }
  })

  await time('switch', async () => {
    for (const p of live()) {
      step('upgrade:switch')
      await p.intent!.phase('switch')
      p.mark = await consoleMark(ctx.paths, p.plan.name) // off now: what it prints from its restart on
      try {
        await finishSwitch(ctx, p.plan.name, p.intent!.data)
      } catch (e) {
        await backOut(ctx, p, e as Error)
        continue
      }
      await p.intent!.done()
      p.result = { ...p.plan, outcome: 'upgraded', restarted: p.plan.wasRunning, image: p.plan.baseTo }
      ctx.log(`${p.plan.name}: ${p.plan.baseFrom.slice(0, 12)} → ${p.plan.baseTo.slice(0, 12)}${p.plan.wasRunning ? ', restarted' : ''}`)
    }
  })
}

/** A switch that failed: back to the old overlay and definition, restarted if it ran. */
async function backOut(ctx: FleetContext, p: Planned, e: Error): Promise<void> {
  const files = p.files
  const notes: string[] = []
  try {
    if (await libvirt.isActive(p.plan.name)) await libvirt.destroy(p.plan.name)
    // Switched already (no .next left): swap back to the old overlay.
    if (p.intent!.data.newOverlay && !existsSync(nextOverlay(files)) && existsSync(previousOverlay(files))) {
      await renameDurable(files.boot, `${files.boot}.swap`)
      await finishSwap(files)
    }
    if (p.oldXml) {
      await libvirt.defineXml(p.oldXml)
      await writeFileAtomic(xmlPath(ctx.paths, p.plan.name), p.oldXml)
    }
  } catch (e2) {
    notes.push(`going back failed too: ${(e2 as Error).message}`)
  }
  await fail(ctx, p, `${e.message}${notes.length ? `; ${notes.join('; ')}` : ''}`)
}
