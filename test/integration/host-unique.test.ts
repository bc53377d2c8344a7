// A definition checked out from git may carry a MAC or UUID that another domain on this host
// (another fleet's, or one made by hand) already uses: create-vm refuses it, naming both.
import { randomUUID } from 'node:crypto'
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blankImage, fleet, sandbox, virsh } from '../helpers/fleet.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'

const a = sandbox()
const b = sandbox()
const web1 = a.name('web1')
const web2 = b.name('web2')

describe.skipIf(libvirtMissing)('MAC and UUID unique against the host', () => {
  beforeAll(async () => {
    for (const sb of [a, b]) {
      await blankImage(join(sb.dir, 'base.qcow2'))
      expect((await fleet(sb, ['image', 'import', join(sb.dir, 'base.qcow2'), '--name', 'base'])).code).toBe(0)
    }
    const r = await fleet(a, ['create-vm', web1, '--memory', '256M', '--vcpus', '1', '--var-size', '64M', '--network', 'user', '--yes'])
    expect(r.code, r.stderr).toBe(0)
  })
  afterAll(async () => {
    await virsh(['undefine', '--nvram', web1])
    await virsh(['undefine', '--nvram', web2])
    a.cleanup()
    b.cleanup()
  })

  it('refuses a copied definition whose MAC another fleet\'s domain uses, creating nothing', async () => {
    const dst = join(b.repo, 'machines', web2)
    cpSync(join(a.repo, 'machines', web1), dst, { recursive: true })
    writeFileSync(join(dst, 'hostname'), `${web2}\n`)
    // A fresh UUID, so only the MAC is shared.
    const json = JSON.parse(readFileSync(join(dst, 'machine.json'), 'utf8')) as { mac: string; uuid: string }
    writeFileSync(join(dst, 'machine.json'), JSON.stringify({ ...json, uuid: randomUUID() }, null, 2) + '\n')
    const mac = json.mac
    const r = await fleet(b, ['create-vm', web2])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toContain(`machine ${web2}: MAC ${mac} in machine.json is already used by the libvirt domain ${web1}`)
    expect(existsSync(join(b.state, 'vms', web2))).toBe(false)
    expect((await virsh(['domstate', web2])).code).not.toBe(0)
  })

  it('refuses one whose UUID another fleet\'s domain uses, creating nothing', async () => {
    const dst = join(b.repo, 'machines', web2)
    const json = JSON.parse(readFileSync(join(a.repo, 'machines', web1, 'machine.json'), 'utf8')) as { mac: string; uuid: string }
    // A fresh MAC, so only the UUID is shared.
    const mac = `52:54:00:${randomUUID().slice(0, 6).match(/../g)!.join(':')}`
    writeFileSync(join(dst, 'machine.json'), JSON.stringify({ ...json, mac }, null, 2) + '\n')
    const r = await fleet(b, ['create-vm', web2])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toContain(`is already used by the libvirt domain ${web1}`)
    expect(r.stderr).toContain(`machine ${web2}: UUID ${json.uuid} in machine.json`)
    expect(existsSync(join(b.state, 'vms', web2))).toBe(false)
    expect((await virsh(['domstate', web2])).code).not.toBe(0)
  })
})
