// Rolling upgrades of VMs on a remote libvirt host (qemu+ssh:// on loopback, the session daemon of
// another local user; TCG), the tiny test image in --stay-up mode: two running VMs go in ONE wave
// with --max-unavailable 2 (both down at once, as the host's libvirt reports while it runs), each
// health-checked; a fleet killed (SIGKILL) after it stopped a VM there is finished by `fleet
// repair` (started on the new base, /var's data intact); a v-bad that never comes up is rolled
// back on the first VM, and the second is reported `not started` with the image it stays on.
import { execa } from 'execa'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fleetKilled } from '../helpers/faults.js'
import { FLEET, fleet, fleetJson, sandbox } from '../helpers/fleet.js'
import { buildTestImage, tail } from '../helpers/guest.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { startRemoteHost, type RemoteHost } from '../helpers/remote-host.js'

const sb = sandbox()
const [va, vb] = [sb.name('wa'), sb.name('wb')]
let host: RemoteHost
const digest: Record<string, string> = {}
const CONSOLE_UP = 'console:^FLEET-TEST-UP'

interface VmOut { name: string; outcome: string; image: string; healthy?: boolean; health?: string; wave?: number; restarted: boolean; error?: string }
interface Out { stopped?: string; vms: VmOut[] }

/** The VM's FLEET-TEST-MARKER lines (from its console log on the host), as key=value maps. */
async function markers(n: string): Promise<Record<string, string>[]> {
  const r = await fleet(sb, ['console', n, '--log'])
  return [...r.stdout.replace(/\r/g, '').matchAll(/^FLEET-TEST-MARKER (.*)$/gm)].map((m) => Object.fromEntries(m[1]!.trim().split(' ').map((kv) => kv.split('=') as [string, string])))
}

async function waitMarkers(n: string, count: number, ms = 240_000): Promise<Record<string, string>[]> {
  for (const end = Date.now() + ms; ; await sleep(1000)) {
    const m = await markers(n)
    if (m.length >= count) return m
    if (Date.now() > end) throw new Error(`${n}: no marker #${count}\n${tail((await fleet(sb, ['console', n, '--log'])).stdout)}`)
  }
}

/** `fleet upgrade ARGS --json` while the host's libvirt is polled: its result and the most VMs seen down at once. */
async function rollout(args: string[]): Promise<{ code: number; out: Out; maxDown: number; report: string }> {
  const p = execa(FLEET, ['upgrade', ...args, '--json'], { env: sb.env, reject: false, stdin: 'ignore', timeout: 900_000 })
  let maxDown = 0
  let done = false
  const poll = (async () => {
    while (!done) {
      const r = await host.virsh(['list', '--all'])
      const states = new Map(r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((w) => w.length >= 3).map((w) => [w[1]!, w.slice(2).join(' ')]))
      if (states.size) maxDown = Math.max(maxDown, [va, vb].filter((n) => states.get(n) !== 'running').length)
      await sleep(150)
    }
  })()
  const r = await p
  done = true
  await poll
  const out = (String(r.stdout).trim() ? JSON.parse(String(r.stdout)) : { vms: [] }) as Out
  return { code: r.exitCode ?? -1, out, maxDown, report: `${JSON.stringify(out, null, 1)}\n${String(r.stderr).slice(-3000)}` }
}

const vm = (out: Out, n: string) => out.vms.find((v) => v.name === n)!

describe.skipIf(libvirtMissing)('rolling upgrades of VMs on a remote host', () => {
  beforeAll(async () => {
    host = await startRemoteHost(join(sb.dir, 'remote'))
    for (const [v, extra] of [['v1', {}], ['v2', {}], ['v3', {}], ['vbad', { varLabel: 'nosuch' }]] as const) {
      await buildTestImage(join(sb.dir, `${v}.qcow2`), { version: v, stayUp: true, ...extra })
    }
    const imp = await fleetJson<{ digest: string }>(sb, ['image', 'import', join(sb.dir, 'v1.qcow2'), '--name', 'base'])
    digest.v1 = imp.digest
    for (const n of [va, vb]) {
      const r = await fleet(sb, ['create-vm', n, '--libvirt-host', host.uri, '--network', 'none', '--memory', '256M', '--var-size', '64M', '--yes', '--start'], { timeoutMs: 300_000 })
      expect(r.code, r.stderr).toBe(0)
    }
    for (const n of [va, vb]) await waitMarkers(n, 1)
  }, 600_000)
  afterAll(async () => {
    if (host) {
      for (const n of [va, vb]) await fleet(sb, ['destroy-vm', n, '--delete-data', '--yes'], { timeoutMs: 120_000 })
      const vols = (await host.virsh(['vol-list', '--pool', 'fleet'])).stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '')
      for (const v of vols.filter((x) => x.startsWith(va) || x.startsWith(vb) || Object.values(digest).some((d) => x.includes(d)))) await host.virsh(['vol-delete', '--pool', 'fleet', v])
      await host.stop()
    }
    sb.cleanup()
  })

  it('--max-unavailable 2: both remote VMs in one wave, down at the same time, on v2 and healthy', async () => {
    digest.v2 = (await fleetJson<{ digest: string }>(sb, ['image', 'import', join(sb.dir, 'v2.qcow2'), '--name', 'base'])).digest
    const dry = await fleetJson<Out>(sb, ['upgrade', '--all', '--max-unavailable', '2', '--dry-run'])
    for (const n of [va, vb]) expect(vm(dry, n), n).toMatchObject({ outcome: 'would upgrade', image: digest.v1, baseFrom: digest.v1, baseTo: digest.v2, wasRunning: true, wave: 1 })
    const r = await rollout(['--all', '--max-unavailable', '2', '--health', CONSOLE_UP, '--health-timeout', '300', '--timeout', '60'])
    expect(r.code, r.report).toBe(0)
    for (const n of [va, vb]) expect(vm(r.out, n), r.report).toMatchObject({ outcome: 'upgraded', image: digest.v2, healthy: true, restarted: true, wave: 1 })
    expect(r.maxDown, 'one wave of two: both were down together').toBe(2)
    for (const n of [va, vb]) expect((await waitMarkers(n, 2)).at(-1)).toMatchObject({ version: 'v2', boot: '2' })
  }, 900_000)

  it('in sync: plan says so and upgrade leaves both running, untouched; a hosts change is drift: planned, resynced on the same base, seen by the guest', async () => {
    interface Plan { vms: { name: string; action: string; detail: string }[] }
    const plan = await fleetJson<Plan>(sb, ['plan'])
    for (const n of [va, vb]) expect(plan.vms.find((v) => v.name === n), JSON.stringify(plan.vms)).toMatchObject({ action: 'in-sync' })
    const ids = async () => Promise.all([va, vb].map(async (n) => (await host.virsh(['domid', n])).stdout.trim()))
    const before = await ids()
    const same = await rollout(['--all', '--max-unavailable', '2', '--health', CONSOLE_UP])
    expect(same.code, same.report).toBe(0)
    for (const n of [va, vb]) expect(vm(same.out, n), same.report).toMatchObject({ outcome: 'unchanged', restarted: false, image: digest.v2 })
    expect(same.maxDown).toBe(0)
    expect(await ids(), 'neither was restarted').toEqual(before)

    writeFileSync(join(sb.repo, 'machines', va, 'hosts'), '10.9.8.7 drifted\n')
    const drift = await fleetJson<Plan>(sb, ['plan'])
    expect(drift.vms.find((v) => v.name === va), 'va').toMatchObject({ action: 'upgrade' })
    expect(drift.vms.find((v) => v.name === va)!.detail).toMatch(/identity changed/)
    expect(drift.vms.find((v) => v.name === vb), 'vb').toMatchObject({ action: 'in-sync' })
    const r = await rollout(['--all', '--health', CONSOLE_UP, '--health-timeout', '300', '--timeout', '60'])
    expect(r.code, r.report).toBe(0)
    expect(vm(r.out, va), r.report).toMatchObject({ outcome: 'upgraded', image: digest.v2, restarted: true, healthy: true })
    expect(vm(r.out, vb), r.report).toMatchObject({ outcome: 'unchanged', restarted: false })
    const m = (await waitMarkers(va, 3)).at(-1)!
    expect(m).toMatchObject({ version: 'v2', 'hosts-sha256': createHash('sha256').update('10.9.8.7 drifted\n').digest('hex') })
    expect((await fleetJson<Plan>(sb, ['plan'])).vms.find((v) => v.name === va)).toMatchObject({ action: 'in-sync' })
  }, 900_000)

  it('a fleet killed after it stopped a VM there: `fleet repair` finishes the upgrade, /var data intact', async () => {
    digest.v3 = (await fleetJson<{ digest: string }>(sb, ['image', 'import', join(sb.dir, 'v3.qcow2'), '--name', 'base'])).digest
    const before = (await markers(va)).at(-1)!
    const k = await fleetKilled(sb, ['upgrade', va, '--health', CONSOLE_UP, '--timeout', '60'], { env: { FLEET_TEST_KILL_AT: 'remote-upgrade:stopped' } })
    expect(k.signal, k.stderr).toBe('SIGKILL')
    expect((await host.virsh(['domstate', va])).stdout.trim()).toBe('shut off')
    const rep = await fleet(sb, ['repair'], { timeoutMs: 300_000 })
    expect(rep.code, rep.stderr).toBe(0)
    expect(rep.stdout + rep.stderr).toMatch(/finished on .*: on [0-9a-f]{12}, started again/)
    expect((await host.virsh(['domstate', va])).stdout.trim()).toBe('running')
    const after = (await waitMarkers(va, 4)).at(-1)!
    expect(after).toMatchObject({ version: 'v3', 'machine-id': before['machine-id'], 'data-sha256': before['data-sha256'], boot: '4' })
    expect((await host.virsh(['vol-list', '--pool', 'fleet'])).stdout).not.toContain(`${va}.upgrade-was-running`)
    // Nothing left to resolve: a second repair finds no interrupted operation.
    expect((await fleetJson<{ items: unknown[] }>(sb, ['repair'])).items).toEqual([])
  }, 900_000)

  it('a v-bad that never comes up: the first VM rolled back and healthy, the second not started (on its image), exit 3', async () => {
    // va is on v3 (its channel's image), vb still on v2: both move to vbad, vb's wave never starts.
    digest.vbad = (await fleetJson<{ digest: string }>(sb, ['image', 'import', join(sb.dir, 'vbad.qcow2'), '--name', 'base'])).digest
    const r = await rollout(['--all', '--max-unavailable', '1', '--health', CONSOLE_UP, '--health-timeout', '120', '--timeout', '60'])
    expect(r.code, r.report).toBe(3)
    expect(vm(r.out, va), r.report).toMatchObject({ outcome: 'rolled back', image: digest.v3, healthy: true, wave: 1 })
    expect(vm(r.out, vb), r.report).toMatchObject({ outcome: 'not started', image: digest.v2, wave: 2 })
    expect(r.out.stopped).toMatch(/stopped after wave 1/)
    expect(r.maxDown).toBeLessThanOrEqual(1)
    expect((await host.virsh(['domstate', vb])).stdout.trim()).toBe('running')
    expect((await waitMarkers(va, 5)).at(-1)).toMatchObject({ version: 'v3' })
  }, 900_000)
})
