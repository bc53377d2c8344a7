// npm run bench: ratios against a baseline measured in the same run (3. and 4. are in fleet-ops.mjs).
//  1. new /var disk: mkfs.ext4 -d fast path vs guestfish appliance (baseline)
//  2. identity resync of N disks: one guestfish launch for all vs one launch per disk (baseline)
//  5. `fleet upgrade --all` of 10 stopped VMs onto a new base (identity changed too, so every
//     /var is written) vs the flow it replaces: one guestfish launch per VM copying the identity
//     onto the existing /var (baseline, measured on BENCH_BASELINE_VMS of them and taken per VM)
import { execa } from 'execa'
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createVarDisk, resyncIdentity } from '../dist/services/var-disk.js'
import { ustar } from '../dist/services/ustar.js'

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
  // BENCH_ONLY=upgrade: just the upgrade --all figure (the appliance baselines above take minutes).
  if (process.env.BENCH_ONLY !== 'upgrade') await varDisks()
  await upgradeAll()
} finally {
  rmSync(dir, { recursive: true, force: true })
}

async function varDisks() {
  const slow = await time(() => createVarDisk(join(dir, 'g.qcow2'), 256 << 20, identity, 'guestfish', tmp))
  const fast = await time(() => createVarDisk(join(dir, 'm.qcow2'), 256 << 20, identity, 'mkfs', tmp))
  console.log(`new /var disk: guestfish ${slow.toFixed(0)} ms (baseline), mkfs.ext4 -d ${fast.toFixed(0)} ms, ratio ${(fast / slow).toFixed(4)}`)

  const disks = []
  for (let i = 0; i < N; i++) {
    const f = join(dir, `d${i}.qcow2`)
    await createVarDisk(f, 256 << 20, identity, 'mkfs', tmp)
    disks.push(f)
  }
  process.env.FLEET_VAR_METHOD = 'guestfish' // the baseline and the batch: the appliance
  const perDisk = await time(async () => {
    for (const d of disks) await resyncIdentity([{ file: d, identity }], tmp)
  })
  const batch = await time(() => resyncIdentity(disks.map((file) => ({ file, identity })), tmp))
  delete process.env.FLEET_VAR_METHOD
  console.log(`identity resync of ${N} disks: ${N} launches ${perDisk.toFixed(0)} ms (baseline), one launch ${batch.toFixed(0)} ms, ratio ${(batch / perDisk).toFixed(3)}`)
  const e2 = await time(() => resyncIdentity(disks.map((file) => ({ file, identity })), tmp))
  console.log(`identity resync of ${N} disks without an appliance (e2fs): ${e2.toFixed(0)} ms, ${(perDisk / e2).toFixed(1)}x faster than ${N} launches`)
}

async function upgradeAll() {
  const VMS = Number(process.env.BENCH_VMS ?? 10)
  const BASELINE = Number(process.env.BENCH_BASELINE_VMS ?? 2)
  if ((await execa('virsh', ['-c', 'qemu:///system', 'version'], { reject: false })).exitCode !== 0) {
    console.log('upgrade --all: skipped (libvirtd not reachable)')
    return
  }
  const fleetBin = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'bin', 'fleet')
  const sb = join(dir, 'fleet')
  mkdirSync(join(sb, 'repo', 'machines'), { recursive: true })
  mkdirSync(join(sb, 'state'), { recursive: true })
  chmodSync(dir, 0o755) // qemu (libvirt-qemu) reaches the disks
  chmodSync(sb, 0o755)
  const env = { FLEET_REPO: join(sb, 'repo'), FLEET_STATE_DIR: join(sb, 'state'), FLEET_VIRT_TYPE: 'qemu', FLEET_ON_REBOOT: 'destroy', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' }
  const fleet = async (args) => {
    const r = await execa(fleetBin, args, { env, reject: false, stdin: 'ignore' })
    if (r.exitCode !== 0) throw new Error(`fleet ${args.join(' ')} exited ${r.exitCode}\n${r.stdout}\n${r.stderr}`)
    return r
  }
  const tag = Math.random().toString(36).slice(2, 7)
  const names = Array.from({ length: VMS }, (_, i) => `fleet-bench-${tag}-${i}`)
  try {
    for (const [f, size] of [['a.qcow2', '64M'], ['b.qcow2', '65M']]) await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(sb, f), size])
    await fleet(['image', 'import', join(sb, 'a.qcow2'), '--name', 'base'])
    for (const n of names) await fleet(['create-vm', n, '--memory', '256M', '--vcpus', '1', '--var-size', '64M', '--network', 'none', '--yes'])
    await fleet(['image', 'import', join(sb, 'b.qcow2'), '--name', 'base'])
    for (const n of names) appendFileSync(join(sb, 'repo', 'machines', n, 'hosts'), '10.9.9.9 bench.example\n')
    let out
    // Without --json, as an admin runs it: progress (the identity method) on stderr.
    const ms = await time(async () => (out = await fleet(['upgrade', '--all'])))
    const upgraded = names.filter((n) => new RegExp(`^${n}: upgraded`, 'm').test(out.stdout)).length
    if (upgraded !== VMS) throw new Error(`upgrade --all upgraded ${upgraded} of ${VMS}: ${out.stdout}`)
    const method = /Identity sync[^\n]*/.exec(out.stderr)?.[0] ?? '(method not printed)'

    // Baseline: one guestfish launch per VM, copying its identity (as a tar) onto its existing /var.
    const bl = names.slice(0, BASELINE)
    let baseMs = 0
    for (const n of bl) {
      const idDir = join(sb, 'repo', 'machines', n)
      const entries = [{ name: 'identity/', mode: 0o755 }]
      for (const f of readdirSync(idDir).filter((f) => f !== 'machine.json')) entries.push({ name: `identity/${f}`, mode: 0o644, data: readFileSync(join(idDir, f)) })
      const tar = join(tmp, `${n}.tar`)
      writeFileSync(tar, ustar(entries), { mode: 0o600 })
      const varDisk = join(sb, 'state', 'vms', n, 'var.qcow2')
      baseMs += await time(() => execa('guestfish', ['--rw', '--format=qcow2', '-a', varDisk, '--', 'run', ':', 'mount', '/dev/sda', '/', ':', 'tar-in', tar, '/'],
        { env: { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: process.env.LIBGUESTFS_BACKEND_SETTINGS } }))
      rmSync(tar)
    }
    const perVm = ms / VMS
    const basePerVm = baseMs / bl.length
    const ratio = basePerVm / perVm
    console.log(`upgrade --all of ${VMS} stopped VMs onto a new base (identity changed): ${ms.toFixed(0)} ms, ${perVm.toFixed(0)} ms per VM; ${method}`)
    console.log(`  baseline, one guestfish launch per VM copying the identity (${bl.length} VMs measured): ${basePerVm.toFixed(0)} ms per VM`)
    console.log(`  ratio ${ratio.toFixed(1)}x faster per VM (target >= 50x: ${ratio >= 50 ? 'met' : 'NOT met'})`)
  } finally {
    for (const n of names) await execa('virsh', ['-c', 'qemu:///system', 'undefine', '--nvram', n], { reject: false })
  }
}
