// fleet rollback: boot.qcow2 and .previous swapped (through .swap, under the VM's lock and an
// intent record, so a kill at any point is finished by the next command); /var is not touched.
import * as libvirt from '../adapters/libvirt.js'
import { existsSync } from 'node:fs'
import { UserError } from '../errors.js'
import { loadMachine } from '../machines/repository.js'
import type { VmName } from '../name.js'
import { beginIntent, vmTarget } from '../ops/intent.js'
import { finishSwap, previousOverlay } from '../ops/overlays.js'
import type { RollbackData } from '../ops/recovery.js'
import { recoverFirst, withVms } from '../ops/vm-op.js'
import { vmFiles } from '../repo.js'
import { overlayBaseDigest } from '../store/images.js'
import { renameDurable } from '../util/fsx.js'
import { step } from '../util/interrupt.js'
import type { FleetContext } from './context.js'
import { currentBaseDigest, machineXml, writeXml } from './domain-xml.js'
import { assertOwned } from './ownership.js'

export interface RollbackResult {
  name: VmName
  baseFrom: string
  baseTo: string
  dryRun: boolean
}

/** Swaps the current and previous boot overlays; /var is not touched. */
export async function rollback(ctx: FleetContext, name: VmName): Promise<RollbackResult> {
  await recoverFirst(ctx, [name])
  const look = async () => {
    const m = await loadMachine(ctx.paths, name)
    const files = vmFiles(ctx.paths, name)
    if (!existsSync(previousOverlay(files))) throw new UserError(`machine ${name}: no previous boot overlay to roll back to`, 'Rollback works after an upgrade that changed the base image.')
    const from = await currentBaseDigest(ctx.paths, m)
    const to = (await overlayBaseDigest(ctx.paths, previousOverlay(files))) ?? 'unknown'
    return { m, files, from, to }
  }
  if (ctx.dryRun) {
    const { from, to } = await look()
    return { name, baseFrom: from, baseTo: to, dryRun: true }
  }
  return withVms(ctx, [name], async () => {
    const { m, files, from, to } = await look()
    await assertOwned(ctx.paths, name, { adopt: ctx.adopt, log: ctx.log })
    if (await libvirt.isActive(name)) throw new UserError(`machine ${name}: is running`, `Stop it first: fleet stop-vm ${name}`)
    const data: RollbackData = { from, to, xmlTo: await machineXml(ctx, m, to), xmlFrom: await machineXml(ctx, m, from) }
    const intent = await beginIntent(ctx.paths, vmTarget(name), 'rollback', 'swap', data)
    step('rollback:swap')
    await renameDurable(files.boot, `${files.boot}.swap`)
    step('rollback:swapping')
    await finishSwap(files)
    step('rollback:define')
    await writeXml(ctx.paths, name, data.xmlTo)
    await libvirt.defineXml(data.xmlTo)
    await intent.done()
    return { name, baseFrom: from, baseTo: to, dryRun: false }
  })
}
