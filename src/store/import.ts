// Putting an image into the store and moving channels: under the store's exclusive lock and an
// intent record. The image is copied into the store's own folder first, and that copy (not the
// source, which could change meanwhile) is verified, made read-only and renamed into place.
import { task, type Log } from '../util/progress.js'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type * as qemuImg from '../adapters/qemu-img.js'
import { UserError } from '../errors.js'
import { beginIntent, readIntent, STORE_TARGET } from '../ops/intent.js'
import { sweepScratch } from '../ops/scratch.js'
import { withStore } from '../ops/vm-op.js'
import type { Paths } from '../repo.js'
import { copyHashing, renameDurable, sha256File, unlinkDurable, writeFileAtomic } from '../util/fsx.js'
import { step } from '../util/interrupt.js'
import { channelsFile, DIGEST, imagePath, readChannels, verifyBaseImage } from './images.js'

export interface StoreContext {
  paths: Paths
  log: Log
}

export interface ImportResult {
  channel: string
  digest: string
  path: string
  previous?: string
  alreadyStored: boolean
  /** What the verification read (format, virtual size). */
  info?: qemuImg.ImageInfo
}

interface ImportData {
  tmp: string
  channel: string
}

/**
 * Resolves an interrupted import or gc and removes what crashed runs left in the store. The
 * caller holds the store lock exclusively, so no import is running: every temp file is stale.
 */
export async function recoverStore(ctx: StoreContext): Promise<string[]> {
  const { paths } = ctx
  const done: string[] = []
  const intent = await readIntent<Partial<ImportData>>(paths, STORE_TARGET)
  if (intent) {
    // Rolled back: an import is complete only when its channel moved, which is its last step.
    done.push(`interrupted ${intent.intent.op} (pid ${intent.intent.pid}, at ${intent.intent.phase}) rolled back`)
    await intent.done()
  }
  if (existsSync(paths.images)) {
    for (const f of await readdir(paths.images)) {
      if (!f.startsWith('.import-') && !/\.tmp-\d+$/.test(f)) continue
      await rm(join(paths.images, f), { force: true })
      done.push(`removed ${join(paths.images, f)}`)
    }
  }
  done.push(...await sweepScratch(paths))
  for (const d of done) ctx.log(`image store: recovered: ${d}`)
  return done
}

/** Points a channel at a stored digest, remembering the one before. Caller holds the store lock. */
async function setChannel(paths: Paths, channel: string, digest: string): Promise<void> {
  if (!DIGEST.test(digest)) throw new Error(`bad digest ${digest}`)
  const channels = await readChannels(paths)
  const old = Object.hasOwn(channels, channel) ? channels[channel] : undefined
  if (old?.digest === digest) return
  const previous = old ? [old.digest, ...old.previous.filter((d) => d !== old.digest && d !== digest)] : []
  const next = { ...channels, [channel]: { digest, updated: new Date().toISOString(), previous } }
  await writeFileAtomic(channelsFile(paths), JSON.stringify(next, null, 2) + '\n')
}

/**
 * Puts a qcow2 into the store under its content hash (read-only) and points `channel` at it.
 * `move`: the file is fleet's own scratch output on the store's filesystem, so it is hashed
 * in place and renamed instead of copied.
 */
export async function importImage(ctx: StoreContext, file: string, channel: string, opts: { dryRun?: boolean; move?: boolean } = {}): Promise<ImportResult> {
  const { paths } = ctx
  if (!existsSync(file)) throw new UserError(`${file} does not exist`)
  if (opts.dryRun) {
    const info = await verifyBaseImage(file)
    const before = (await readChannels(paths))[channel]?.digest
    return { channel, digest: '(computed on import)', path: paths.images, previous: before, alreadyStored: false, info }
  }
  await mkdir(paths.images, { recursive: true, mode: 0o755 })
  return withStore(ctx, 'exclusive', async () => {
    await recoverStore(ctx)
    const before = (await readChannels(paths))[channel]?.digest
    const tmp = opts.move ? file : join(paths.images, `.import-${process.pid}-${Date.now()}.qcow2`)
    const intent = await beginIntent<ImportData>(paths, STORE_TARGET, 'import', 'copy', { tmp, channel })
    try {
      step('import:copy')
      const digest = opts.move ? await sha256File(file) : await task(ctx.log, `Copying ${file} into the image store`, () => copyHashing(file, tmp))
      step('import:verify')
      const info = await verifyBaseImage(tmp, file)
      const dst = imagePath(paths, digest)
      const alreadyStored = existsSync(dst)
      step('import:store')
      if (alreadyStored) {
        if (!opts.move) await unlinkDurable(tmp)
      } else {
        await chmod(tmp, 0o444)
        await renameDurable(tmp, dst)
      }
      step('import:channel')
      await setChannel(paths, channel, digest)
      await intent.done()
      return { channel, digest, path: dst, previous: before, alreadyStored, info }
    } catch (e) {
      if (!opts.move) await rm(tmp, { force: true })
      await intent.done()
      throw e
    }
  })
}
