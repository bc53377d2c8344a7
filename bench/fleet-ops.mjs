// Bench of fleet operating many VMs (npm run bench runs it after run.mjs):
//  3. create 10 VMs (disks, identity, define; no boot) with `fleet apply` vs the flow it replaces,
//     per VM: qemu-img create overlay + /var disk, one guestfish launch making the filesystem and
//     copying the identity in, virsh define (baseline, measured on BENCH_BASELINE_VMS VMs);
//  4. `fleet list --json` and `fleet plan --json` with 100 defined VMs (target < 1 s each).
import { execa } from 'execa'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const FLEET = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'bin', 'fleet')
const CREATE = Number(process.env.BENCH_CREATE_VMS ?? 10)
const BASELINE = Number(process.env.BENCH_BASELINE_VMS ?? 2)
const MANY = Number(process.env.BENCH_LIST_VMS ?? 100)
const tag = `fleet-bench-${Math.random().toString(36).slice(2, 6)}`
const dir = mkdtempSync(join(tmpdir(), 'fleet-bench-ops-'))
chmodSync(dir, 0o755) // qemu must reach the disks
const repo = join(dir, 'repo')
const state = join(dir, 'state')
mkdirSync(join(repo, 'machines'), { recursive: true })
mkdirSync(state, { mode: 0o755 })
const env = { ...process.env, FLEET_REPO: repo, FLEET_STATE_DIR: state, FLEET_VIRT_TYPE: process.env.FLEET_VIRT_TYPE ?? 'qemu', LIBGUESTFS_BACKEND_SETTINGS: process.env.LIBGUESTFS_BACKEND_SETTINGS ?? 'force_tcg' }
const virsh = (args) => execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false })
const fleet = async (args) => {
  const r = await execa(FLEET, args, { env, reject: false, stdin: 'ignore' })
  if (r.exitCode !== 0) throw new Error(`fleet ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`)
  return r.stdout
}
const time = async (f) => {
  const t0 = performance.now()
  await f()
  return performance.now() - t0
}
const names = (what, n) => Array.from({ length: n }, (_, i) => `${tag}-${what}${i}`)
const HW = ['--memory', '256M', '--vcpus', '1', '--var-size', '256M', '--network', 'none', '--yes']
const made = []

try {
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '64M'])
  await fleet(['image', 'import', join(dir, 'base.qcow2'), '--name', 'base'])

  // 3. Definitions without VMs (create-vm then destroy-vm --delete-data), then one `fleet apply`.
  const vms = names('c', CREATE)
  await fleet(['create-vm', ...vms, ...HW])
  await fleet(['destroy-vm', ...vms, '--delete-data', '--yes'])
  made.push(...vms)
  const applyMs = await time(() => fleet(['apply', ...vms]))
  const baseDigest = JSON.parse(await fleet(['image', 'list', '--json'])).images?.[0]?.digest
  const baseImage = join(state, 'images', `${baseDigest}.qcow2`)
  // Baseline, per VM: two qemu-img creates, one guestfish launch (mkfs + identity), virsh define.
  const base = names('b', BASELINE)
  const template = readFileSync(join(repo, 'libvirt', `${vms[0]}.xml`), 'utf8')
  const uuid0 = /<uuid>([^<]+)<\/uuid>/.exec(template)[1]
  const mac0 = /mac(?:=|\saddress=")([0-9a-f:]{17})/.exec(template)?.[1]
  const baselineMs = await time(async () => {
    for (const [i, n] of base.entries()) {
      const vd = join(state, 'vms', n)
      mkdirSync(join(vd, 'identity'), { recursive: true })
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', baseImage, '-F', 'qcow2', join(vd, 'boot.qcow2')])
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(vd, 'var.qcow2'), '256M'])
      for (const f of ['machine-id', 'hostname', 'ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'resolv.conf', 'hosts', 'tcp_ports']) {
        writeFileSync(join(vd, 'identity', f), readFileSync(join(repo, 'machines', vms[0], f)))
      }
      await execa('tar', ['-C', vd, '-cf', join(vd, 'identity.tar'), 'identity'])
      await execa('guestfish', ['--rw', '-a', join(vd, 'var.qcow2'), '--', 'run', ':', 'mkfs', 'ext4', '/dev/sda', 'label:var', ':', 'mount', '/dev/sda', '/',
        ':', 'mkdir-p', '/home', ':', 'mkdir-p', '/log/journal', ':', 'tar-in', join(vd, 'identity.tar'), '/'], { env: { ...env, LIBGUESTFS_BACKEND: 'direct' } })
      let xml = template.replaceAll(vms[0], n).replace(uuid0, randomUUID())
      if (mac0) xml = xml.replaceAll(mac0, `52:54:00:be:00:${String(i).padStart(2, '0')}`)
      writeFileSync(join(vd, 'domain.xml'), xml)
      const r = await virsh(['define', join(vd, 'domain.xml')])
      if (r.exitCode !== 0) throw new Error(`virsh define: ${r.stderr}`)
      made.push(n)
    }
  })
  const perFleet = applyMs / CREATE
  const perBase = baselineMs / BASELINE
  console.log(`create ${CREATE} VMs with fleet apply: ${applyMs.toFixed(0)} ms (${perFleet.toFixed(0)} ms per VM); baseline qemu-img + guestfish + virsh define: ${perBase.toFixed(0)} ms per VM (${BASELINE} VMs); fleet is ${(perBase / perFleet).toFixed(0)}x faster per VM (target >= 100x)`)

  // 4. 100 defined VMs (made in one create-vm), then list and plan, each timed as the admin runs it.
  const many = names('m', MANY)
  await fleet(['create-vm', ...many, ...HW])
  made.push(...many)
  // Wall time (best of 3) and the CPU time fleet itself used (GNU time): on a busy host the first
  // is mostly waiting for a core, the second is what the command costs.
  const measure = async (args) => {
    let best = { wall: Infinity, cpu: NaN }
    for (let i = 0; i < 3; i++) {
      const gnuTime = existsSync('/usr/bin/time')
      const t0 = performance.now()
      const r = await execa(gnuTime ? '/usr/bin/time' : FLEET, gnuTime ? ['-f', 'cpu %U %S', FLEET, ...args] : args, { env, reject: false, stdin: 'ignore' })
      const wall = performance.now() - t0
      if (r.exitCode !== 0) throw new Error(`fleet ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`)
      const m = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(String(r.stderr))
      if (wall < best.wall) best = { wall, cpu: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN }
    }
    return `${best.wall.toFixed(0)} ms wall, ${Number.isNaN(best.cpu) ? '?' : best.cpu.toFixed(0)} ms CPU`
  }
  const list = await measure(['list', '--json'])
  const plan = await measure(['plan', '--json'])
  const node0 = await time(() => execa(process.execPath, ['-e', '0']))
  console.log(`${MANY + CREATE} defined VMs: fleet list --json ${list}; fleet plan --json ${plan} (target < 1000 ms each; node -e 0 takes ${node0.toFixed(0)} ms, a measure of how busy the host is)`)
} finally {
  for (const n of made) await virsh(['undefine', '--nvram', n])
  rmSync(dir, { recursive: true, force: true })
}
