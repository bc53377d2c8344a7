// fleet image import --verify: the file is copied into a verification folder, checked, booted
// to prove the guest contract (services/verify-image.ts), and only then moved into the store
// and the channel pointed at it. The copy is what is checked, booted and stored, so the source
// changing meanwhile changes nothing.
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Arch } from '../machines/model.js'
import { makeScratch } from '../ops/scratch.js'
import { verifyBaseImage } from '../store/images.js'
import { importImage, type ImportResult } from '../store/import.js'
import { step } from '../util/interrupt.js'
import { withUndo } from '../util/undo.js'
import type { FleetContext } from './context.js'
import { checkQemuCanReach } from './permissions.js'
import { verifyBoot, type VerifyReport } from './verify-image.js'

export interface VerifiedImport extends ImportResult {
  verify: VerifyReport
}

export async function importVerified(ctx: FleetContext, file: string, channelKey: string, o: { arch: Arch; timeoutS: number }): Promise<VerifiedImport> {
  await checkQemuCanReach([ctx.paths.verify])
  return withUndo(async (undo) => {
    const vs = await makeScratch(ctx.paths, 'verify', { qemu: true })
    undo.add(`verification folder ${vs.dir}`, vs.remove)
    const copy = join(vs.dir, 'image.qcow2')
    step('import:verify-copy')
    ctx.log(`Copying ${file} for verification`)
    await copyFile(file, copy)
    // The header checks first: a qcow2 with a backing file must never reach qemu.
    await verifyBaseImage(copy, file)
    const verify = await verifyBoot(ctx, undo, copy, vs.dir, { arch: o.arch, channel: channelKey, timeoutS: o.timeoutS })
    const r = await importImage({ paths: ctx.paths, log: ctx.log }, copy, channelKey, { move: true })
    await vs.remove()
    return { ...r, verify }
  })
}
