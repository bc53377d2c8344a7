// A remote VM (machine.json "host" = qemu+ssh://…) is guarded as a local one is: a definition whose
// MAC or UUID another domain on THAT host uses is refused by create-vm (nothing made there or
// here); define-vm refuses one whose volumes are gone there (nothing defined); the console of a
// domain of its name there that is not this fleet's is not attached to (unless --adopt). No VM
// boots here: a blank base is enough, so this file stays fast.
import { randomUUID } from 'node:crypto'
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blankImage, fleet, sandbox, type Sandbox } from '../helpers/fleet.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { startRemoteHost, type RemoteHost } from '../helpers/remote-host.js'

const a = sandbox()
const b = sandbox()
const vmA = a.name('pa')
const vmB = b.name('pb')
let host: RemoteHost
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const volumesOf = async (name: string) => (await host.virsh(['vol-list', '--pool', 'fleet'])).stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((v) => v.startsWith(`${name}.`))
const machineJson = (sb: Sandbox, name: string) => join(sb.repo, 'machines', name, 'machine.json')

describe.skipIf(libvirtMissing)('remote VMs: the same guards as local ones', () => {
  beforeAll(async () => {
    host = await startRemoteHost(join(a.dir, 'remote'))
    for (const sb of [a, b]) {
      await blankImage(join(sb.dir, 'base.qcow2'))
      expect((await fleet(sb, ['image', 'import', join(sb.dir, 'base.qcow2'), '--name', 'base'])).code).toBe(0)
    }
    const r = await fleet(a, ['create-vm', vmA, '--libvirt-host', host.uri, '--network', 'user', '--memory', '256M', '--var-size', '64M', '--yes'], { timeoutMs: 300_000 })
    expect(r.code, r.stderr).toBe(0)
  }, 400_000)
  afterAll(async () => {
    if (host) {
      for (const n of [vmA, vmB]) {
        await host.virsh(['undefine', '--nvram', n])
        for (const v of await volumesOf(n)) await host.virsh(['vol-delete', '--pool', 'fleet', v])
      }
      await host.stop()
    }
    a.cleanup()
    b.cleanup()
  })

  it('create-vm refuses a definition whose MAC, then whose UUID, a domain on its host uses: exit 2, naming both; nothing made there or here', async () => {
    // Another fleet (b) checks out a copy of vmA's definition as vmB, on the same host.
    const dst = join(b.repo, 'machines', vmB)
    cpSync(join(a.repo, 'machines', vmA), dst, { recursive: true })
    writeFileSync(join(dst, 'hostname'), `${vmB}\n`)
    const json = JSON.parse(readFileSync(machineJson(b, vmB), 'utf8')) as { mac: string; uuid: string; host: string }
    expect(json.host).toBe(host.uri)
    const nothingMade = async () => {
      expect(await volumesOf(vmB)).toEqual([])
      expect((await host.virsh(['domstate', vmB])).code).not.toBe(0)
      expect(existsSync(join(b.state, 'vms', vmB))).toBe(false)
      expect(existsSync(join(b.repo, 'libvirt', `${vmB}.xml`))).toBe(false)
    }
    // Only the MAC shared (a fresh UUID).
    writeFileSync(machineJson(b, vmB), JSON.stringify({ ...json, uuid: randomUUID() }, null, 2) + '\n')
    const mac = await fleet(b, ['create-vm', vmB], { timeoutMs: 120_000 })
    expect(mac.code, mac.stderr).toBe(2)
    expect(mac.stderr).toContain(`machine ${vmB}: MAC ${json.mac} in machine.json is already used by the libvirt domain ${vmA} on ${host.uri}`)
    await nothingMade()
    // Only the UUID shared (a fresh MAC).
    const freshMac = `52:54:00:${randomUUID().slice(0, 6).match(/../g)!.join(':')}`
    writeFileSync(machineJson(b, vmB), JSON.stringify({ ...json, mac: freshMac }, null, 2) + '\n')
    const uuid = await fleet(b, ['create-vm', vmB], { timeoutMs: 120_000 })
    expect(uuid.code, uuid.stderr).toBe(2)
    expect(uuid.stderr).toContain(`machine ${vmB}: UUID ${json.uuid} in machine.json is already used by the libvirt domain ${vmA} on ${host.uri}`)
    await nothingMade()
  }, 300_000)

  it('define-vm of a remote VM whose /var volume is gone there refuses it (exit 2, naming the volume), defining nothing', async () => {
    const before = (await host.virsh(['dumpxml', '--inactive', vmA])).stdout
    const xmlFile = join(a.repo, 'libvirt', `${vmA}.xml`)
    const xmlBefore = readFileSync(xmlFile, 'utf8')
    // What a by-hand clean-up on the host would leave: the domain without its /var volume.
    expect((await host.virsh(['vol-delete', '--pool', 'fleet', `${vmA}.var.raw`])).code).toBe(0)
    const writeOf = readFileSync(machineJson(a, vmA), 'utf8')
    writeFileSync(machineJson(a, vmA), writeOf.replace(/"memory": "256M"/, '"memory": "320M"'))
    try {
      const r = await fleet(a, ['define-vm', vmA], { timeoutMs: 120_000 })
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(new RegExp(`machine ${vmA}: its /var volume ${esc(vmA)}\\.var\\.raw is missing on ${esc(host.uri)}`))
      expect((await host.virsh(['dumpxml', '--inactive', vmA])).stdout).toBe(before)
      expect(readFileSync(xmlFile, 'utf8')).toBe(xmlBefore)
      const b2 = await fleet(a, ['build-libvirt-xml', vmA], { timeoutMs: 120_000 })
      expect(b2.code).toBe(2)
      expect(readFileSync(xmlFile, 'utf8')).toBe(xmlBefore)
    } finally {
      writeFileSync(machineJson(a, vmA), writeOf)
    }
  }, 300_000)

  it('console does not attach to a domain of its name on the host that is not this fleet\'s (exit 2, nothing changed); --adopt lets it through', async () => {
    // The same domain, defined again without fleet's metadata (as by hand or another tool).
    const xml = (await host.virsh(['dumpxml', '--inactive', vmA])).stdout.replace(/<metadata>[\s\S]*?<\/metadata>\s*/, '')
    expect(xml).not.toMatch(/fleet-vm/)
    writeFileSync(join(a.dir, 'foreign.xml'), xml)
    expect((await host.virsh(['define', join(a.dir, 'foreign.xml')])).code).toBe(0)
    const foreign = (await host.virsh(['dumpxml', '--inactive', vmA])).stdout
    const r = await fleet(a, ['console', vmA])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(new RegExp(`machine ${vmA}: the libvirt domain ${vmA} on ${esc(host.uri)} has no fleet metadata: it was defined outside fleet`))
    expect((await host.virsh(['dumpxml', '--inactive', vmA])).stdout).toBe(foreign)
    expect((await host.virsh(['domstate', vmA])).stdout.trim()).toBe('shut off')
    // --adopt: past the ownership check, to the next refusal (no terminal here to attach).
    const adopt = await fleet(a, ['console', vmA, '--adopt'])
    expect(adopt.code).toBe(2)
    expect(adopt.stderr).toMatch(/attaching to the console needs a terminal/)
    expect(adopt.stderr).toMatch(/adopting it \(--adopt\)/)
  }, 120_000)
})
