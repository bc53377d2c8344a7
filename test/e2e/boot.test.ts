// Real boots under TCG: two VMs from one base each print THEIR OWN identity; /var persists.
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { fleet, fleetJson, sandbox, virsh } from '../helpers/fleet.js'
import { buildTestImage, waitForMarker, waitOff } from '../helpers/guest.js'

const sb = sandbox()
const vms = [sb.name('alpha'), sb.name('beta')]
const broken = sb.name('broken')
const t = { suite: performance.now() }


describe.skipIf(libvirtMissing)('booting real VMs', () => {
  beforeAll(async () => {
    const ms = await buildTestImage(join(sb.dir, 'v1.qcow2'), { version: 'v1' })
    console.log(`test image build: ${ms} ms`)
    const r = await fleet(sb, ['image', 'import', join(sb.dir, 'v1.qcow2'), '--name', 'base'])
    expect(r.code, r.stderr).toBe(0)
  })
  afterAll(async () => {
    for (const n of [...vms, broken]) {
      await virsh(['destroy', n])
      await virsh(['undefine', '--nvram', n])
    }
    console.log(`whole e2e boot suite: ${Math.round(performance.now() - t.suite)} ms`)
    sb.cleanup()
  })

  it('boots two VMs from one base; each prints its own machine-id and hostname', async () => {
    const started: Record<string, number> = {}
    for (const name of vms) {
      const t0 = performance.now()
      const r = await fleet(sb, ['create-vm', name, '--virt-type', 'qemu', '--memory', '512M', '--var-size', '256M', '--yes', '--start'])
      expect(r.code, r.stderr).toBe(0)
      started[name] = performance.now()
      console.log(`create-vm --start ${name}: ${Math.round(started[name]! - t0)} ms`)
    }
    for (const name of vms) {
      const m = await waitForMarker(sb, name, 1)
      console.log(`${name}: start → marker ${Math.round(performance.now() - started[name]!)} ms: ${JSON.stringify(m)}`)
      const dir = join(sb.repo, 'machines', name)
      expect(m['machine-id']).toBe(readFileSync(join(dir, 'machine-id'), 'utf8').trim())
      expect(m.hostname).toBe(name)
      expect(m.version).toBe('v1')
      expect(m.boot).toBe('1')
      expect(m.root).toBe('ro')
      expect(m.tcp_ports).toBe('22')
    }
    const [a, b] = await Promise.all(vms.map((n) => waitForMarker(sb, n, 1)))
    expect(a!['machine-id']).not.toBe(b!['machine-id'])
    const listed = await fleet(sb, ['console', vms[0]!, '--log'])
    expect(listed.stdout).toContain('FLEET-TEST-MARKER')
  }, 300_000)

  it('keeps /var across boots: the second boot counts 2 with the same data', async () => {
    const [name] = vms
    await waitOff(sb, name!)
    const first = await waitForMarker(sb, name!, 1)
    const r = await fleet(sb, ['start-vm', name!])
    expect(r.code, r.stderr).toBe(0)
    const second = await waitForMarker(sb, name!, 2)
    console.log(`${name}: second boot ${JSON.stringify(second)}`)
    expect(second.boot).toBe('2')
    expect(second['data-sha256']).toBe(first['data-sha256'])
    expect(second['machine-id']).toBe(first['machine-id'])
  }, 300_000)

  it('a broken image (no `var` label) fails with the console tail', async () => {
    await buildTestImage(join(sb.dir, 'broken.qcow2'), { version: 'broken', varLabel: 'nosuch' })
    expect((await fleet(sb, ['image', 'import', join(sb.dir, 'broken.qcow2'), '--name', 'broken'])).code).toBe(0)
    expect((await fleet(sb, ['create-vm', broken, '--base', 'broken', '--var-size', '64M', '--yes', '--start'])).code).toBe(0)
    const err = await waitForMarker(sb, broken, 1, 120_000).then(() => undefined, (e: Error) => e)
    expect(err?.message).toContain('no filesystem labelled nosuch')
    expect(err?.message).toContain(`--- tail of ${broken} console.log ---`)
    console.log(err?.message)
  }, 300_000)

  it('stops and destroys, leaving no domain, overlay or NVRAM behind', async () => {
    for (const name of [...vms, broken]) {
      await waitOff(sb, name)
      const r = await fleet(sb, ['destroy-vm', name, '--delete-data', '--yes'])
      expect(r.code, r.stderr).toBe(0)
      expect((await virsh(['domstate', name])).code).not.toBe(0)
      expect(existsSync(join(sb.state, 'vms', name))).toBe(false)
    }
    const { vms: rows } = await fleetJson<{ vms: { state: string }[] }>(sb, ['list'])
    expect(rows.every((r) => r.state === 'not defined')).toBe(true)
    expect(readdirSync(join(sb.state, 'vms')).filter((f) => !f.startsWith('.'))).toEqual([])
  }, 180_000)
})
