// Running an operation on VMs: names checked, locks taken in sorted order, and any operation a
// killed fleet left on those VMs finished or rolled back first — and said so.
import { existsSync } from 'node:fs'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { VmName } from '../name.js'
import { storeLock, vmFiles } from '../repo.js'
import type { FleetContext } from '../services/context.js'
import { isRealDir } from '../util/data-file.js'
import { guardSignals } from '../util/interrupt.js'
import { withLock, withLocks } from '../util/lock.js'
import { readIntent, vmTarget } from './intent.js'
import { sweepScratch } from './scratch.js'
import { recoverCreate, recoverRollback, recoverUpgrade } from './recovery.js'

/** Removes crash leftovers of NAME that no intent names: temp files of atomic writes, half-written definitions. */
async function sweepVmLeftovers(ctx: FleetContext, name: VmName): Promise<string[]> {
  const { paths } = ctx
  const out: string[] = []
  const files = vmFiles(paths, name)
  const sweep = async (dir: string, match: (f: string) => boolean) => {
    if (!existsSync(dir)) return
    for (const f of await readdir(dir)) {
      if (!match(f)) continue
      await rm(join(dir, f), { recursive: true, force: true })
      out.push(join(dir, f))
    }
  }
  await sweep(files.dir, (f) => /\.tmp-\d+$/.test(f) || f.startsWith('.var.qcow2.staging-'))
  await sweep(paths.libvirt, (f) => f.startsWith(`${name}.xml.tmp-`))
  await sweep(paths.machines, (f) => f.startsWith(`.${name}.new-`))
  // A rekey killed mid-write (under this lock): ciphertext only, but never to be committed.
  if (await isRealDir(join(paths.machines, name))) await sweep(join(paths.machines, name), (f) => /\.age\.tmp-\d+$/.test(f))
  return out
}

/** Finishes or rolls back an interrupted operation on NAME. The caller holds NAME's lock. */
export async function recoverVm(ctx: FleetContext, name: VmName): Promise<string[]> {
  const done: string[] = []
  const intent = await readIntent(ctx.paths, vmTarget(name))
  if (intent) {
    ctx.log(`machine ${name}: an interrupted ${intent.intent.op} (pid ${intent.intent.pid}, ${intent.intent.started}, at ${intent.intent.phase}) is being resolved first`)
    const what = intent.intent.op === 'create' ? await recoverCreate(ctx, name, intent as never)
      : intent.intent.op === 'upgrade' ? await recoverUpgrade(ctx, name, intent as never)
        : intent.intent.op === 'rollback' ? await recoverRollback(ctx, name, intent as never)
          : [`unknown operation ${intent.intent.op}: record removed`]
    done.push(...what)
    if (intent.intent.op !== 'create' && intent.intent.op !== 'upgrade' && intent.intent.op !== 'rollback') await intent.done()
  }
  const swept = [...await sweepVmLeftovers(ctx, name), ...await sweepScratch(ctx.paths)]
  if (swept.length) done.push(`removed leftovers ${swept.join(', ')}`)
  for (const d of done) ctx.log(`machine ${name}: recovered: ${d}`)
  return done
}

/**
 * Locks the VMs (sorted, each once), recovers each, then runs `fn`. SIGINT/SIGTERM are taken
 * over for the rest of the process so an interrupted step can still be undone.
 */
export async function withVms<T>(ctx: FleetContext, names: readonly VmName[], fn: () => Promise<T>): Promise<T> {
  return withVmLocks(ctx, names, async () => {
    for (const n of [...new Set(names)].sort()) await recoverVm(ctx, n)
    return fn()
  })
}

/** The VMs' locks only (sorted, each once); withVms is what operations use. */
export async function withVmLocks<T>(ctx: FleetContext, names: readonly VmName[], fn: () => Promise<T>): Promise<T> {
  const leave = guardSignals(ctx.log)
  const unique = [...new Set(names)].sort()
  try {
    return await withLocks(unique.map((n) => ({ file: vmFiles(ctx.paths, n).lock, what: `machine ${n}` })), fn, { onWait: ctx.log })
  } finally {
    leave()
  }
}

/** Resolves interrupted operations on the VMs now (briefly locking those that have one); --dry-run only reports them. */
export async function recoverFirst(ctx: FleetContext, names: readonly VmName[]): Promise<void> {
  if (ctx.dryRun) {
    for (const n of names) {
      const i = await readIntent(ctx.paths, vmTarget(n))
      if (i) ctx.log(`machine ${n}: an interrupted ${i.intent.op} is pending; the next run (or \`fleet repair\`) resolves it first`)
    }
    return
  }
  // No record, nothing to resolve: not even a lock is needed. withVms, which every caller runs
  // next, looks again (and removes leftovers) under the lock.
  const pending: VmName[] = []
  for (const n of names) if (await readIntent(ctx.paths, vmTarget(n))) pending.push(n)
  if (pending.length) await withVms(ctx, pending, async () => undefined)
}

/** The image store lock: exclusive for gc, import and build; shared while overlays are made on it. */
export async function withStore<T>(ctx: Pick<FleetContext, 'paths' | 'log'>, mode: 'shared' | 'exclusive', fn: () => Promise<T>): Promise<T> {
  const leave = guardSignals(ctx.log)
  try {
    return await withLock(storeLock(ctx.paths), `image store ${ctx.paths.images}`, fn, { shared: mode === 'shared', onWait: ctx.log, waitMs: Number(process.env.FLEET_STORE_WAIT_MS ?? 600_000) })
  } finally {
    leave()
  }
}

