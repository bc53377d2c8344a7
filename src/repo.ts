// Where things live: the admin's fleet repository and the state directory with disk images.
import { existsSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { UserError } from './errors.js'
import type { VmName } from './name.js'
import { defaultStateDir, type Env } from './util/env.js'

export interface Paths {
  repo: string
  machines: string
  libvirt: string
  state: string
  images: string
  vms: string
  /** Lock files (flock; never deleted): vm-NAME.lock, store.lock. */
  locks: string
  /** Intent records of operations in progress: NAME.json per VM, store.json. */
  ops: string
  /** 0700 scratch folders, one per running operation (they may hold private host keys). */
  tmp: string
  /** Scratch folders of boot verifications: qemu must enter them (root:qemu's group, 0710). */
  verify: string
  /** Console logs of failed boot verifications, kept for the admin. */
  verifyLogs: string
}

/** The nearest ancestor of `start` holding machines/, or undefined. */
export function findRepo(start: string): string | undefined {
  let dir = resolve(start)
  for (;;) {
    const m = join(dir, 'machines')
    if (existsSync(m) && statSync(m).isDirectory()) return dir
    const up = dirname(dir)
    if (up === dir) return undefined
    dir = up
  }
}

export function resolvePaths(opts: { repo?: string; stateDir?: string; cwd?: string }, env: Env = process.env): Paths {
  const explicit = opts.repo ?? env.FLEET_REPO
  let repo: string | undefined
  if (explicit) {
    repo = resolve(explicit)
    if (!existsSync(join(repo, 'machines'))) {
      throw new UserError(`${repo} is not a fleet repository (no machines/ folder)`, `Run \`fleet init ${explicit}\` to make one.`)
    }
  } else {
    repo = findRepo(opts.cwd ?? process.cwd())
    if (!repo) {
      throw new UserError('not inside a fleet repository (no machines/ folder here or in any parent)', 'Run `fleet init DIR`, cd into a fleet repository, or pass --repo / set FLEET_REPO.')
    }
  }
  return statePaths(repo, resolve(opts.stateDir ?? defaultStateDir(env)))
}

export function statePaths(repo: string, state: string): Paths {
  return {
    repo,
    machines: join(repo, 'machines'),
    libvirt: join(repo, 'libvirt'),
    state,
    images: join(state, 'images'),
    vms: join(state, 'vms'),
    locks: join(state, 'locks'),
    ops: join(state, 'ops'),
    tmp: join(state, 'tmp'),
    verify: join(state, 'verify'),
    verifyLogs: join(state, 'verify-logs'),
  }
}

/** The image store's lock: exclusive for gc, import and build; shared while an overlay is made. */
export function storeLock(paths: Paths): string {
  return join(paths.locks, 'store.lock')
}

/** Files of one VM in the state directory (only a VmName, so never outside vms/). */
export function vmFiles(paths: Paths, name: VmName) {
  const dir = join(paths.vms, name)
  return {
    dir,
    boot: join(dir, 'boot.qcow2'),
    var: join(dir, 'var.qcow2'),
    nvram: join(dir, 'OVMF_VARS.fd'),
    console: join(dir, 'console.log'),
    lock: join(paths.locks, `vm-${name}.lock`),
  }
}
export type VmFiles = ReturnType<typeof vmFiles>
