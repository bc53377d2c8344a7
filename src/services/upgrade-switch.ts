// The end of an upgrade, shared by upgrade itself and by the recovery of one a kill interrupted
// at or after the identity resync (the commit point: from there on it is finished, not undone).
import { task } from '../util/progress.js'
import { existsSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import * as libvirt from '../adapters/libvirt.js'
import * as qemuImg from '../adapters/qemu-img.js'
import { UserError } from '../errors.js'
import { loadMachine, readIdentity } from '../machines/repository.js'
import type { VmName } from '../name.js'
import type { IntentHandle } from '../ops/intent.js'
import { nextOverlay, previousOverlay, pruneOverlays, switchOverlays } from '../ops/overlays.js'
import type { UpgradeData } from '../ops/recovery.js'
import { makeScratch } from '../ops/scratch.js'
import { vmFiles } from '../repo.js'
import { writeFileAtomic } from '../util/fsx.js'
import { step } from '../util/interrupt.js'
import type { FleetContext } from './context.js'
import { xmlPath } from './domain-xml.js'
import { manifestOf, writeManifest } from './identity-manifest.js'
import { resyncIdentity } from './var-disk.js'

/** Rollback points an upgrade keeps by default (.previous and one older). */
export const DEFAULT_KEEP = 2

/**
 * The end of an upgrade, resumable from any point: define first (a refused definition changes
 * nothing), then the files, the overlay switch and the restart.
 */
export async function finishSwitch(ctx: FleetContext, name: VmName, d: UpgradeData): Promise<void> {
  const files = vmFiles(ctx.paths, name)
  await libvirt.defineXml(d.xml)
  step('upgrade:defined')
  await writeFileAtomic(xmlPath(ctx.paths, name), d.xml)
  await writeManifest(files.dir, d.manifest)
  if (d.newOverlay) await switchOverlays(files)
  step('upgrade:switched')
  if (d.newOverlay) await pruneOverlays(files, d.keep ?? DEFAULT_KEEP)
  if (d.wasRunning) await libvirt.ensureRunning(name)
}

// Recovery of an upgrade killed at or after the resync: resync again, then finish the switch.
export async function rollForwardUpgrade(ctx: FleetContext, name: VmName, intent: IntentHandle<UpgradeData>): Promise<string> {
  const d = intent.data
  const files = vmFiles(ctx.paths, name)
  if (intent.intent.phase === 'identity') {
    // The killed run's appliance or FUSE export exits by itself (its stdin closed); wait for it to let go of /var.
    for (let i = 0; i < 120 && (await qemuImg.isLocked(files.var)); i++) {
      if (i === 0) ctx.log(`machine ${name}: waiting for the killed run's appliance to release ${files.var}`)
      await sleep(500)
    }
    const m = await loadMachine(ctx.paths, name)
    const identity = await readIdentity(m, ctx.keyring)
    const scratch = await makeScratch(ctx.paths, `recover-${name}`)
    try {
      await ctx.virtType() // decides whether the appliance may use KVM (a useless /dev/kvm hangs it)
      await task(ctx.log, `Resyncing the identity of ${name}`, () => resyncIdentity([{ file: files.var, identity }], scratch.dir, ctx.log))
    } finally {
      await scratch.remove()
    }
    await intent.phase('switch', { manifest: manifestOf(identity) })
  }
  if (d.newOverlay && !existsSync(nextOverlay(files)) && !existsSync(files.boot)) {
    throw new UserError(`machine ${name}: interrupted upgrade cannot finish: neither ${files.boot} nor ${nextOverlay(files)} exists`, `${previousOverlay(files)} is the old boot overlay: rename it to boot.qcow2, remove ${intent.intent.target}.json in ${ctx.paths.ops}, and run the upgrade again. /var was not touched.`)
  }
  await finishSwitch(ctx, name, d)
  return `finished the interrupted upgrade: on ${d.to.slice(0, 12)}${d.wasRunning ? ', restarted' : ''}`
}
