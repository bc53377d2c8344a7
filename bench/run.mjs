// npm run bench: ratios against a baseline measured in the same run.
//  1. new /var disk: mkfs.ext4 -d fast path vs guestfish appliance (baseline)
//  2. identity resync of N disks: one guestfish launch for all vs one launch per disk (baseline)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createVarDisk, resyncIdentity } from '../dist/services/var-disk.js'

process.env.LIBGUESTFS_BACKEND_SETTINGS ??= 'force_tcg'
const N = Number(process.env.BENCH_DISKS ?? 5)
const dir = mkdtempSync(join(tmpdir(), 'fleet-bench-'))
const tmp = join(dir, 'tmp') // 0700: staged identity copies hold a private key
mkdirSync(tmp, { mode: 0o700 })
const identity = new Map([
  ['machine-id', Buffer.from('0123456789abcdef0123456789abcdef\n')],
  ['hostname', Buffer.from('bench\n')],
  ['hosts', Buffer.from('127.0.1.1 bench\n')],
  ['ssh_host_ed25519_key', Buffer.from('private\n')],
])
const time = async (f) => {
  const t0 = performance.now()
  await f()
  return performance.now() - t0
}
try {
  const slow = await time(() => createVarDisk(join(dir, 'g.qcow2'), 256 << 20, identity, 'guestfish', tmp))
  const fast = await time(() => createVarDisk(join(dir, 'm.qcow2'), 256 << 20, identity, 'mkfs', tmp))
  console.log(`new /var disk: guestfish ${slow.toFixed(0)} ms (baseline), mkfs.ext4 -d ${fast.toFixed(0)} ms, ratio ${(fast / slow).toFixed(4)}`)

  const disks = []
  for (let i = 0; i < N; i++) {
    const f = join(dir, `d${i}.qcow2`)
    await createVarDisk(f, 256 << 20, identity, 'mkfs', tmp)
    disks.push(f)
  }
  const perDisk = await time(async () => {
    for (const d of disks) await resyncIdentity([{ file: d, identity }], tmp)
  })
  const batch = await time(() => resyncIdentity(disks.map((file) => ({ file, identity })), tmp))
  console.log(`identity resync of ${N} disks: ${N} launches ${perDisk.toFixed(0)} ms (baseline), one launch ${batch.toFixed(0)} ms, ratio ${(batch / perDisk).toFixed(3)}`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
