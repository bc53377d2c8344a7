// upgrade --all: a machine that cannot be upgraded (no VM made from it yet) is reported and the
// others are upgraded; exit 3 says not everything went well.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blankImage, fleet, fleetJson, sandbox, virsh } from '../helpers/fleet.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'

const sb = sandbox()
const v1 = sb.name('v1')
const v2 = sb.name('v2')
const HW = ['--memory', '256M', '--vcpus', '1', '--var-size', '64M', '--network', 'none', '--yes']

describe.skipIf(libvirtMissing)('upgrade --all', () => {
  beforeAll(async () => {
    await blankImage(join(sb.dir, 'a.qcow2'), '64M')
    await blankImage(join(sb.dir, 'b.qcow2'), '65M')
    await fleetJson(sb, ['image', 'import', join(sb.dir, 'a.qcow2'), '--name', 'base'])
    for (const n of [v1, v2]) expect((await fleet(sb, ['create-vm', n, ...HW])).code).toBe(0)
    expect((await fleet(sb, ['destroy-vm', v2, '--delete-data', '--yes'])).code).toBe(0) // machines/v2 stays, no VM
  })
  afterAll(async () => {
    await virsh(['undefine', '--nvram', v1])
    sb.cleanup()
  })

  it('upgrades what it can and reports the machine it cannot touch', async () => {
    const b = await fleetJson<{ digest: string }>(sb, ['image', 'import', join(sb.dir, 'b.qcow2'), '--name', 'base'])
    const r = await fleet(sb, ['upgrade', '--all', '--json'])
    expect(r.code, r.stderr).toBe(3)
    const out = JSON.parse(r.stdout) as { vms: { name: string; outcome: string; baseTo: string; error?: string; state?: string }[] }
    expect(out.vms.find((v) => v.name === v1)).toMatchObject({ outcome: 'upgraded', baseTo: b.digest })
    expect(out.vms.find((v) => v.name === v2)).toMatchObject({ outcome: 'failed', state: 'not touched', error: expect.stringMatching(/missing, so there is no VM to upgrade/) })
    // Named explicitly, the same machine stops the command before anything changes.
    const named = await fleet(sb, ['upgrade', v2])
    expect(named.code).toBe(2)
    expect(named.stderr).not.toMatch(/destroy-vm .*--delete-data/)
  })
})
