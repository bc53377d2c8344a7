// Rolling upgrade with health gates, on real libvirt under TCG: three running VMs (and one
// stopped) on the tiny test image in --stay-up mode (it answers the guest agent and prints
// FLEET-TEST-UP only once its /var is mounted). A v2 that cannot find /var fails the check: the
// first VM is rolled back to v1, running and healthy, the others are never touched, exit 3. A good
// v2 then goes through in waves, never more VMs down at once than --max-unavailable, as libvirt
// itself reports while the rollout runs.
import { execa } from 'execa'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { FLEET, fleet, fleetJson, sandbox, virsh } from '../helpers/fleet.js'
import { buildTestImage, consoleLog, waitForMarker } from '../helpers/guest.js'

const sb = sandbox()
const running = ['a', 'b', 'c'].map((n) => sb.name(`roll-${n}`))
const parked = sb.name('roll-d') // stopped: upgraded without being started
const all = [...running, parked]
const HW = ['--memory', '256M', '--vcpus', '1', '--var-size', '64M', '--network', 'none', '--yes']
const CONSOLE_UP = 'console:^FLEET-TEST-UP'

interface VmOut { name: string; outcome: string; image: string; healthy?: boolean; health?: string; wave?: number; restarted: boolean }
interface Out { stopped?: string; vms: VmOut[] }

/** Runs `fleet upgrade` while polling libvirt; returns its result and the most VMs seen down at once. */
async function rollout(args: string[]): Promise<{ code: number; out: Out; stderr: string; maxDown: number; samples: number; report: string }> {
  const p = execa(FLEET, ['upgrade', ...args, '--json'], { env: sb.env, reject: false, stdin: 'ignore', timeout: 600_000 })
  let maxDown = 0
  let samples = 0
  let done = false
  const poll = (async () => {
    while (!done) {
      const r = await virsh(['list', '--all'])
      // " Id   Name   State": a running VM has an id, a shut off one "-".
      const states = new Map(r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((w) => w.length >= 3).map((w) => [w[1]!, w.slice(2).join(' ')]))
      const down = running.filter((n) => states.get(n) !== 'running').length
      maxDown = Math.max(maxDown, down)
      samples++
      await new Promise((r) => setTimeout(r, 200))
    }
  })()
  const r = await p
  done = true
  await poll
  const out = JSON.parse(String(r.stdout)) as Out
  // What a failed expectation prints: --json keeps stderr quiet.
  const report = JSON.stringify({ stopped: out.stopped, vms: out.vms.map((v) => ({ name: v.name, outcome: v.outcome, image: v.image.slice(0, 12), healthy: v.healthy, health: v.health, error: (v as { error?: string }).error })) }, null, 1)
  const tails = all.map((n) => `--- ${n} console (last lines) ---\n${consoleLog(sb, n).split('\n').filter((l) => /FLEET-TEST-(MARKER|UP|DOWN|ERROR|WARN)|Power down|panic/.test(l)).slice(-6).join('\n')}`).join('\n')
  return { code: r.exitCode ?? -1, out, stderr: String(r.stderr), maxDown, samples, report: `${report}\n${tails}` }
}

const domid = async (n: string) => (await virsh(['domid', n])).stdout.trim()
const bootFile = (n: string) => join(sb.state, 'vms', n, 'boot.qcow2')
const markers = (n: string) => [...consoleLog(sb, n).matchAll(/^FLEET-TEST-MARKER version=(\S+)/gm)].map((m) => m[1])

describe.skipIf(libvirtMissing)('rolling upgrade with health checks', () => {
  const digest: Record<string, string> = {}
  beforeAll(async () => {
    await Promise.all([
      buildTestImage(join(sb.dir, 'v1.qcow2'), { version: 'v1', stayUp: true }),
      buildTestImage(join(sb.dir, 'bad.qcow2'), { version: 'v2bad', varLabel: 'nosuch', stayUp: true }),
      buildTestImage(join(sb.dir, 'v2.qcow2'), { version: 'v2', stayUp: true }),
    ])
    digest.v1 = (await fleetJson<{ digest: string }>(sb, ['image', 'import', join(sb.dir, 'v1.qcow2')])).digest
    // One boot at a time: three TCG guests booting together on two busy cores take far longer.
    for (const n of running) {
      expect((await fleet(sb, ['create-vm', n, ...HW, '--start'])).code).toBe(0)
      await waitForMarker(sb, n, 1, 300_000)
    }
    expect((await fleet(sb, ['create-vm', parked, ...HW])).code).toBe(0)
  }, 900_000)
  afterAll(async () => {
    for (const n of all) {
      await virsh(['destroy', n])
      await virsh(['undefine', '--nvram', n])
    }
    sb.cleanup()
  })

  it('a v2 that fails its health check: the first VM is rolled back to v1 and healthy, the others never touched, exit 3', async () => {
    digest.bad = (await fleetJson<{ digest: string }>(sb, ['image', 'import', join(sb.dir, 'bad.qcow2')])).digest
    const [first, ...rest] = running
    const before = new Map(await Promise.all(rest.map(async (n) => [n, { id: await domid(n), boot: statSync(bootFile(n)).ino }] as const)))
    // Bad flags are refused before anything changes.
    for (const bad of [['--health', 'bogus'], ['--health', 'console:('], ['--health', 'console:'], ['--max-unavailable', '0'], ['--health-timeout', '0']]) {
      const b = await fleet(sb, ['upgrade', '--all', ...bad])
      expect(b.code, `${bad.join(' ')}: ${b.stderr}`).toBe(2)
      expect(b.stderr, bad.join(' ')).toContain(bad[0] === '--health' ? bad[1]! : bad[0]!.slice(2))
    }
    for (const n of rest) expect(await domid(n)).toBe(before.get(n)!.id)

    const r = await rollout(['--all', '--health', 'agent', '--health-timeout', '300', '--timeout', '30'])
    expect(r.code, r.report).toBe(3)
    const vm = (n: string) => r.out.vms.find((v) => v.name === n)!
    expect(vm(first!)).toMatchObject({ outcome: 'rolled back', image: digest.v1, healthy: true, wave: 1 })
    expect(vm(first!).health).toMatch(/guest agent answers/)
    for (const n of [...rest, parked]) expect(vm(n), n).toMatchObject({ outcome: 'not started', image: digest.v1 })
    expect(r.out.stopped).toMatch(/stopped after wave 1/)
    expect(vm(first!).error).toMatch(/unhealthy on .*: the VM is shut off/) // the bad image powered off: never "up"

    // The rolled-back VM runs v1 again (and said so on its console after the bad boot).
    expect((await virsh(['domstate', first!])).stdout.trim()).toBe('running')
    expect(markers(first!).at(-1)).toBe('v1')
    expect(consoleLog(sb, first!)).toMatch(/FLEET-FATAL no filesystem labelled nosuch/)
    const list = await fleetJson<{ vms: { name: string; state: string; baseDigest: string }[] }>(sb, ['list'])
    for (const n of all) expect(list.vms.find((v) => v.name === n)?.baseDigest, n).toBe(digest.v1)
    // Never touched: same qemu process (domain id), same boot overlay file, one boot only.
    for (const n of rest) {
      expect(await domid(n), n).toBe(before.get(n)!.id)
      expect(statSync(bootFile(n)).ino, n).toBe(before.get(n)!.boot)
      expect(markers(n), n).toEqual(['v1'])
    }
    expect((await virsh(['domstate', parked])).stdout.trim()).toBe('shut off')
    expect(r.maxDown, `${r.samples} samples`).toBe(1)
    console.log(`failed rollout: at most ${r.maxDown} of 3 down (${r.samples} libvirt samples)`)
  }, 900_000)

  it('a good v2 goes through in waves of 2: all on v2 and healthy, never more than 2 down; the stopped VM stays stopped', async () => {
    digest.v2 = (await fleetJson<{ digest: string }>(sb, ['image', 'import', join(sb.dir, 'v2.qcow2')])).digest
    const t0 = performance.now()
    const r = await rollout(['--all', '--max-unavailable', '2', '--health', CONSOLE_UP, '--health-timeout', '300', '--timeout', '30'])
    expect(r.code, r.report).toBe(0)
    console.log(`rollout of 3 running + 1 stopped VM in waves of 2: ${Math.round(performance.now() - t0)} ms, at most ${r.maxDown} down (${r.samples} libvirt samples)`)
    for (const n of running) {
      expect(r.out.vms.find((v) => v.name === n), n).toMatchObject({ outcome: 'upgraded', image: digest.v2, healthy: true, restarted: true })
      expect(markers(n).at(-1), n).toBe('v2')
      expect((await virsh(['domstate', n])).stdout.trim()).toBe('running')
    }
    expect(r.out.vms.filter((v) => running.includes(v.name)).map((v) => v.wave)).toEqual([1, 1, 2])
    expect(r.out.vms.find((v) => v.name === parked)).toMatchObject({ outcome: 'upgraded', image: digest.v2, restarted: false, wave: 3 })
    expect(r.out.vms.find((v) => v.name === parked)!.healthy).toBeUndefined()
    expect((await virsh(['domstate', parked])).stdout.trim()).toBe('shut off')
    expect(r.maxDown).toBeGreaterThanOrEqual(1)
    expect(r.maxDown).toBeLessThanOrEqual(2)
  }, 900_000)

  it('rollback --to goes back to the previous image on a stopped VM; a digest that is not a rollback point is refused', async () => {
    const bad = await fleet(sb, ['rollback', parked, '--to', digest.bad!.slice(0, 12)])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/is not a rollback point/)
    expect((await fleet(sb, ['rollback', parked, '--to', 'not-hex'])).code).toBe(2)
    const ok = await fleetJson<{ baseTo: string }>(sb, ['rollback', parked, '--to', digest.v1!.slice(0, 12)])
    expect(ok.baseTo).toBe(digest.v1)
  }, 120_000)
})
