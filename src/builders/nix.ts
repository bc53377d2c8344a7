// The NixOS base images: `nix build` of the flake's packages.<system>.<channel>-image.
import { lineSplitter, task, type Log } from '../util/progress.js'
import { existsSync } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { nixBuild } from '../adapters/nix.js'
import { UserError } from '../errors.js'
import type { Arch } from '../machines/model.js'
import type { Paths } from '../repo.js'
import { shippedNixDir } from '../services/init.js'

/** The admin's flake (repo nix/) if there is one, else the flake fleet ships. */
export function flakeDir(paths: Paths): string {
  const own = join(paths.repo, 'nix')
  return existsSync(join(own, 'flake.nix')) ? own : shippedNixDir()
}

/**
 * The image of `channel` for `arch`: the flake's lib.mkFleetOutputs makes packages.<system>.<image>-image
 * for every image it defines (nix/lib.nix), so `--channel web` builds images.web.
 * `path:` so files git does not track yet are part of the build too.
 */
export function installable(dir: string, arch: Arch, channel = 'base'): string {
  return `path:${dir}#packages.${arch}-linux.${channel}-image`
}

/** Runs the build; returns the qcow2 inside the output (nix/modules/image.nix names it nixos.qcow2). */
export async function buildWithNix(paths: Paths, arch: Arch, channel: string, log: Log): Promise<string> {
  const ref = installable(flakeDir(paths), arch, channel)
  const out = await task(log, `nix build ${ref}`, (t) => nixBuild(ref, lineSplitter(t.output)))
  if ((await stat(out).catch(() => undefined))?.isFile()) return out
  const qcow2 = existsSync(out) ? (await readdir(out)).filter((f) => f.endsWith('.qcow2')).sort() : []
  if (qcow2.length !== 1) {
    throw new UserError(`nix build ${ref} produced ${out}, which holds ${qcow2.length ? qcow2.join(', ') : 'no .qcow2 file'}; expected exactly one qcow2`)
  }
  return join(out, qcow2[0]!)
}
