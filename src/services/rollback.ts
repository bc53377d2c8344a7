// fleet rollback: boot.qcow2 and .previous swapped (with --to, an older rollback point made the
// .previous first) (through .swap, under the VM's lock and an
// intent record, so a kill at any point is finished by the next command); /var is not touched.
// A rolling upgrade uses the same steps on a VM that failed its health check, stopping it first
// and starting it again afterwards (recorded too, so a kill still ends with the VM running).
import * as libvirt from '../adapters/libvirt.js'
import { existsSync } from 'node:fs'
import { UserError } from '../errors.js'
import { loadMachine } from '../machines/repository.js'
import type { VmName } from '../name.js'
import { beginIntent, vmTarget } from '../ops/intent.js'
import { finishSwap, olderOverlay, previousOverlay, promoteOverlay, rollbackPoints } from '../ops/overlays.js'
import type { RollbackData } from '../ops/recovery.js'
import { recoverFirst, withVms } from '../ops/vm-op.js'
import { vmFiles } from '../repo.js'
import { overlayBaseDigest } from '../store/images.js'
import { renameDurable } from '../util/fsx.js'
import { step } from '../util/interrupt.js'
import type { FleetContext } from './context.js'
import { currentBaseDigest, machineXml, writeXml } from './domain-xml.js'
import { consoleMark } from './health.js'
import { waitOff } from './lifecycle.js'
import { assertOwned } from './ownership.js'
import { rollbackRemote } from './remote-rollback.js'
import { remoteMachine } from './remote-vm.js'

export interface RollbackResult {
  name: VmName
  baseFrom: string
  baseTo: string
  dryRun: boolean
}

export interface RollbackOptions {
  /** Roll back to the newest rollback point on this image (a digest or a prefix of one); default the newest point. */
  to?: string
}

async function look(ctx: FleetContext, name: VmName, opts: RollbackOptions) {
  const m = await loadMachine(ctx.paths, name)
  const files = vmFiles(ctx.paths, name)
  const points = await rollbackPoints(files)
  if (!points.length) throw new UserError(`machine ${name}: no previous boot overlay to roll back to`, 'Rollback works after an upgrade that changed the base image.')
  const from = await currentBaseDigest(ctx.paths, m)
  const digests = await Promise.all(points.map(async (f) => (await overlayBaseDigest(ctx.paths, f)) ?? 'unknown'))
  // Without --to: the newest rollback point (.previous). With it: the newest one on that image.
  const i = opts.to === undefined ? 0 : digests.findIndex((d) => d.startsWith(opts.to!.toLowerCase()))
  if (i < 0) {
    throw new UserError(`machine ${name}: --to ${opts.to} is not a rollback point of this VM (it keeps ${digests.map((d) => d.slice(0, 12)).join(', ')})`, `Roll back to one of those: fleet rollback ${name} --to DIGEST`)
  }
  const to = digests[i]!
  if (to === from) throw new UserError(`machine ${name}: already on ${to.slice(0, 12)}`)
  return { m, files, from, to, target: points[i]! }
}

/** Swaps the current and previous boot overlays; /var is not touched. */
export async function rollback(ctx: FleetContext, name: VmName, opts: RollbackOptions = {}): Promise<RollbackResult> {
  if (opts.to !== undefined && !/^[0-9a-fA-F]{4,64}$/.test(opts.to)) throw new UserError(`machine ${name}: --to ${JSON.stringify(opts.to)} is not an image digest (4 to 64 hex digits)`, `See the digests with: fleet image list`)
  await recoverFirst(ctx, [name])
  // A VM on a remote host: its rollback points are volumes there (remote-rollback.ts).
  const remote = await remoteMachine(ctx.paths, name)
  if (remote) return { name, ...(await withVms(ctx, [name], () => rollbackRemote(ctx, remote, opts.to))), dryRun: ctx.dryRun }
  if (ctx.dryRun) {
    const { from, to } = await look(ctx, name, opts)
    return { name, baseFrom: from, baseTo: to, dryRun: true }
  }
  return withVms(ctx, [name], async () => {
    await assertOwned(ctx.paths, name, { adopt: ctx.adopt, log: ctx.log })
    if (await libvirt.isActive(name)) throw new UserError(`machine ${name}: is running`, `Stop it first: fleet stop-vm ${name}`)
    const r = await rollbackLocked(ctx, name, opts)
    return { name, baseFrom: r.baseFrom, baseTo: r.baseTo, dryRun: false }
  })
}

export interface RollbackLockedOptions extends RollbackOptions {
  /** The domain to define for the old overlay (default: machines/NAME on the old image). */
  xmlTo?: string
  /** Stop the VM first (ACPI, then power-off after `stopTimeoutS`) and start it afterwards. */
  restart?: boolean
  stopTimeoutS?: number
}

/**
 * The rollback itself; the caller holds the VM's lock. Returns the console offset from just
 * before the restart (what the VM prints after it counts for a console health check).
 */
export async function rollbackLocked(ctx: FleetContext, name: VmName, opts: RollbackLockedOptions = {}): Promise<RollbackResult & { consoleMark: number }> {
  const { m, files, from, to, target } = await look(ctx, name, opts)
  // An older rollback point first becomes .previous (today's .previous kept as an older one).
  const promote = target === previousOverlay(files) ? undefined : { target, parkAs: olderOverlay(files, Date.now()) }
  const data: RollbackData = { from, to, xmlTo: opts.xmlTo ?? (await machineXml(ctx, m, to)), xmlFrom: await machineXml(ctx, m, from), start: opts.restart, promote }
  const intent = await beginIntent(ctx.paths, vmTarget(name), 'rollback', 'swap', data)
  if (opts.restart && (await libvirt.isActive(name))) {
    step('rollback:stop')
    await libvirt.shutdown(name)
    if (!(await waitOff(name, (opts.stopTimeoutS ?? 60) * 1000))) await libvirt.destroy(name)
  }
  if (promote) {
    step('rollback:promote')
    await promoteOverlay(files, promote.target, promote.parkAs)
  }
  step('rollback:swap')
  await renameDurable(files.boot, `${files.boot}.swap`)
  step('rollback:swapping')
  await finishSwap(files)
  step('rollback:define')
  await writeXml(ctx.paths, name, data.xmlTo)
  await libvirt.defineXml(data.xmlTo)
  const mark = await consoleMark(ctx.paths, name)
  if (opts.restart) {
    step('rollback:start')
    await libvirt.ensureRunning(name)
  }
  await intent.done()
  return { name, baseFrom: from, baseTo: to, dryRun: false, consoleMark: mark }
}
