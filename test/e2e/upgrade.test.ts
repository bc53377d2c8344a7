// Upgrade and rollback keep /var: base v1 → boot, data written → base v2 + identity change →
// upgrade → v2 with the same machine-id, new identity, same data → rollback → v1 → gc.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { fleet, fleetJson, sandbox, virsh } from '../helpers/fleet.js'
import { buildTestImage, waitForMarker, waitOff } from '../helpers/guest.js'

const sb = sandbox()
const vm = sb.name('up1')
const sha = (s: string) => createHash('sha256').update(s).digest('hex')


describe.skipIf(libvirtMissing)('upgrade, rollback and gc', () => {
  beforeAll(async () => {
    await Promise.all(['v1', 'v2', 'v3'].map((v) => buildTestImage(join(sb.dir, `${v}.qcow2`), { version: v })))
    expect((await fleet(sb, ['image', 'import', join(sb.dir, 'v1.qcow2')])).code).toBe(0)
  })
  afterAll(async () => {
    await virsh(['destroy', vm])
    await virsh(['undefine', '--nvram', vm])
    sb.cleanup()
  })

  it('moves a VM to v2 with its data and new identity, rolls back to v1, and gc keeps in-use images', async () => {
    expect((await fleet(sb, ['create-vm', vm, '--var-size', '256M', '--yes', '--start'])).code).toBe(0)
    const first = await waitForMarker(sb, vm, 1)
    expect(first.version).toBe('v1')
    await waitOff(sb, vm)

    expect((await fleet(sb, ['image', 'import', join(sb.dir, 'v2.qcow2')])).code).toBe(0)
    const dir = join(sb.repo, 'machines', vm)
    const hosts = readFileSync(join(dir, 'hosts'), 'utf8') + '10.1.2.3 db\n'
    writeFileSync(join(dir, 'hosts'), hosts)
    writeFileSync(join(dir, 'tcp_ports'), '22\n8443\n')

    const plan = await fleetJson<{ vms: { baseFrom: string; baseTo: string; identity: { changed: string[] } }[] }>(sb, ['upgrade', vm, '--dry-run'])
    expect(plan.vms[0]!.identity.changed).toEqual(['hosts', 'tcp_ports'])
    expect(plan.vms[0]!.baseFrom).not.toBe(plan.vms[0]!.baseTo)

    const t0 = performance.now()
    const up = await fleet(sb, ['upgrade', vm, '--json'])
    expect(up.code, up.stderr).toBe(0)
    console.log(`upgrade of 1 VM: ${Math.round(performance.now() - t0)} ms ${JSON.stringify(JSON.parse(up.stdout).timings)}`)
    expect(existsSync(join(sb.state, 'vms', vm, 'boot.qcow2.previous'))).toBe(true)

    expect((await fleet(sb, ['start-vm', vm])).code).toBe(0)
    const second = await waitForMarker(sb, vm, 2)
    expect(second.version).toBe('v2')
    expect(second['machine-id']).toBe(first['machine-id'])
    expect(second['hosts-sha256']).toBe(sha(hosts))
    expect(second.tcp_ports).toBe('22,8443')
    expect(second['data-sha256']).toBe(first['data-sha256'])
    expect(second.boot).toBe('2')
    await waitOff(sb, vm)

    expect((await fleet(sb, ['rollback', vm])).code).toBe(0)
    expect((await fleet(sb, ['start-vm', vm])).code).toBe(0)
    const third = await waitForMarker(sb, vm, 3)
    expect(third.version).toBe('v1')
    expect(third['data-sha256']).toBe(first['data-sha256'])
    await waitOff(sb, vm)

    // A third image, imported on another channel and then left unused by moving that channel away.
    expect((await fleet(sb, ['image', 'import', join(sb.dir, 'v3.qcow2'), '--name', 'spare'])).code).toBe(0)
    const { images } = await fleetJson<{ images: { digest: string; vms: string[]; channels: string[] }[] }>(sb, ['image', 'list'])
    expect(images).toHaveLength(3)
    const v3 = images.find((i) => i.channels.includes('spare'))!.digest
    expect((await fleet(sb, ['image', 'import', join(sb.dir, 'v1.qcow2'), '--name', 'spare'])).code).toBe(0)
    const dry = await fleetJson<{ deleted: { digest: string }[] }>(sb, ['gc', '--dry-run'])
    expect(dry.deleted.map((d) => d.digest)).toEqual([v3])
    const done = await fleetJson<{ deleted: { digest: string }[]; kept: unknown[] }>(sb, ['gc'])
    expect(done.deleted.map((d) => d.digest)).toEqual([v3])
    expect(done.kept).toHaveLength(2)
    const after = await fleetJson<{ images: { vms: string[] }[] }>(sb, ['image', 'list'])
    expect(after.images).toHaveLength(2)
    expect(after.images.every((i) => i.vms.includes(vm))).toBe(true)
  }, 600_000)
})
