// fleet build: produce a base image (Nix flake or Debian bootstrap), optionally recompress it
// with zstd, check it, boot it to prove the guest contract (services/verify-image.ts) and store
// it content-addressed; then move the channel for its arch. Phases are timed:
// build (nix build, or bootstrap + customize) → assemble → convert → verify → store.
import { task, type Log } from '../util/progress.js'
import { existsSync } from 'node:fs'
import { copyFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../adapters/exec.js'
import { nixAvailable, nixCommand, NO_NIX_HINT } from '../adapters/nix.js'
import * as qemuImg from '../adapters/qemu-img.js'
import { bootstrapSpec, bootstrapTarball, buildDebianRaw, checkDebianBuildHost } from '../builders/debian.js'
import { buildWithNix, flakeDir, installable } from '../builders/nix.js'
import { UserError } from '../errors.js'
import type { Arch } from '../machines/model.js'
import type { Paths } from '../repo.js'
import { channelKey, readChannels, verifyBaseImage } from '../store/images.js'
import { importImage } from '../store/import.js'
import { makeScratch } from '../ops/scratch.js'
import { step } from '../util/interrupt.js'
import { timed } from '../util/timing.js'
import { withUndo } from '../util/undo.js'
import type { FleetContext } from './context.js'
import { checkQemuCanReach } from './permissions.js'
import { verifyBoot, type VerifyReport } from './verify-image.js'

export const BUILDERS = ['nix', 'debian'] as const
export type Builder = (typeof BUILDERS)[number]

export interface BuildOptions {
  /** Default: nix where it is installed, else debian. */
  builder?: Builder
  arch: Arch
  channel: string
  compress: boolean
  /** Debian: bootstrap again instead of reusing the cached tree. */
  refresh: boolean
  /** Boot the image and move the channel only if it proves the guest contract. */
  verify: boolean
  verifyTimeoutS: number
  dryRun: boolean
  log: Log
}

export interface BuildResult {
  builder: Builder
  arch: Arch
  channel: string
  dryRun: boolean
  /** What is built from: the flake installable or the bootstrap tarball. */
  source: string
  digest?: string
  path?: string
  previous?: string
  alreadyStored?: boolean
  format?: string
  virtualSize?: number
  size?: number
  compressed: boolean
  bootstrapCached?: boolean
  /** The boot verification (absent with --no-verify). */
  verify?: VerifyReport
  seconds: Record<string, number>
}

/** Bootstrap cache: <state>/cache, or FLEET_CACHE_DIR (e.g. shared by test runs). */
export function buildCacheDir(paths: Paths, env = process.env): string {
  return env.FLEET_CACHE_DIR || join(paths.state, 'cache')
}

export async function buildImage(ctx: FleetContext, o: BuildOptions): Promise<BuildResult> {
  const { paths } = ctx
  // One probe for nix: it picks the default and is the check for an explicit --builder nix.
  const nixPresent = o.builder === 'debian' ? false : await nixAvailable()
  const builder = o.builder ?? (nixPresent ? 'nix' : 'debian')
  const key = channelKey(o.channel, o.arch)
  const before = (await readChannels(paths))[key]?.digest
  const result: BuildResult = { builder, arch: o.arch, channel: o.channel, dryRun: o.dryRun, source: '', compressed: o.compress, previous: before, seconds: {} }

  if (builder === 'nix') {
    if (!nixPresent) throw new UserError(`--builder nix: nix is not installed (looked for "${nixCommand()[0]}")`, NO_NIX_HINT)
    result.source = installable(flakeDir(paths), o.arch, o.channel)
  } else {
    checkDebianBuildHost(o.arch)
    const tarball = bootstrapTarball(buildCacheDir(paths), bootstrapSpec(o.arch))
    result.source = tarball
    result.bootstrapCached = existsSync(tarball) && !o.refresh
  }
  if (o.dryRun) return result
  // Before minutes of building: the verification's disks must be reachable by qemu.
  if (o.verify) await checkQemuCanReach([paths.verify])

  // The work folder is a scratch folder: 0700, removed on every path, swept after a kill.
  const scratch = await makeScratch(paths, `build-${builder}`, { privileged: true })
  const work = scratch.dir
  const t0 = performance.now()
  return withUndo(async (undo) => {
    // The Debian root tree is root-owned: removed with the same privileges that made it.
    undo.add(`build folder ${work}`, scratch.remove)
    // The image under test and the throwaway domain's disks, where qemu may read them.
    const vs = o.verify ? await makeScratch(paths, 'verify', { privileged: true, qemu: true }) : undefined
    if (vs) undo.add(`verification folder ${vs.dir}`, vs.remove)
    let image: string
    let format = 'qcow2'
    let ownScratch = false
    if (builder === 'nix') {
      image = await timed(result.seconds, 'nix build', () => buildWithNix(paths, o.arch, o.channel, o.log))
    } else {
      const d = await buildDebianRaw({ arch: o.arch, cacheDir: buildCacheDir(paths), workDir: work, refresh: o.refresh, log: o.log })
      Object.assign(result.seconds, d.seconds)
      image = d.raw
      format = 'raw'
    }
    const out = join(vs?.dir ?? work, 'image.qcow2')
    if (format !== 'qcow2' || o.compress) {
      const title = `convert: ${format} → qcow2${o.compress ? ' (zstd-compressed clusters)' : ''}`
      await timed(result.seconds, 'convert', () => task(o.log, title, (t) =>
        qemuImg.convert(image, format, out, { ...(o.compress ? { compress: 'zstd' as const } : {}), onPercent: (p) => t.status(`${p.toFixed(0)}%`) })))
      image = out
    } else if (vs) {
      // The Nix output is booted from a copy of ours: libvirt relabels the disks it boots.
      await timed(result.seconds, 'copy', () => copyFile(image, out))
      image = out
    }
    // Our scratch file on the store's filesystem: renamed into the store, not copied. A file
    // the SUDO-prefixed convert left to root is copied, so the store file is ours to chmod.
    if (image === out) ownScratch = (await stat(out)).uid === process.getuid?.()
    if (vs) {
      step('build:verify')
      // The header checks first: a qcow2 with a backing file must never reach qemu.
      await verifyBaseImage(image)
      result.verify = await timed(result.seconds, 'verify', () => verifyBoot(ctx, undo, image, vs.dir, { arch: o.arch, channel: key, timeoutS: o.verifyTimeoutS }))
    }
    step('build:store')
    const stored = await timed(result.seconds, 'store', () => task(o.log, 'store: verifying (qemu-img check, info) and putting it into the image store', () =>
      importImage({ paths, log: o.log }, image, key, { move: ownScratch })))
    Object.assign(result, {
      digest: stored.digest, path: stored.path, alreadyStored: stored.alreadyStored,
      format: stored.info?.format, virtualSize: stored.info?.virtualSize, size: (await stat(stored.path)).size,
    })
    await scratch.remove()
    await vs?.remove()
    result.seconds.total = Math.round((performance.now() - t0) / 100) / 10
    return result
  })
}
