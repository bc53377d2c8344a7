// Every bad value is refused the same way through flags and through a hand-edited definition:
// exit code 2, a message naming the machine, the field and the value, and nothing written
// (no machines/NAME, no disks, no XML, no domain; a hand-edited definition left as it was).
import { randomUUID } from 'node:crypto'
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { totalmem } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { blankImage, fleet, sandbox, virsh } from '../helpers/fleet.js'

const sb = sandbox()
const good = sb.name('good')
const overHost = `${Math.floor(totalmem() / 1024 ** 3) + 1}G`
const badKey = 'ssh-ed25519 AAAAnot-a-key'

interface Case {
  what: string
  args: string[]
  /** Texts the message must hold besides the machine's name: the field and the value. */
  says: string[]
  /** A bad machine name instead of a fresh good one. */
  name?: string
}

const flagCases: Case[] = [
  { what: 'name with capitals and _', name: 'Bad_Name', args: [], says: ['name', '"Bad_Name"', 'hostname label'] },
  { what: 'name ending in -', name: 'web-', args: [], says: ['name', '"web-"'] },
  { what: 'name of 64 characters', name: 'x'.repeat(64), args: [], says: ['name', 'x'.repeat(64)] },
  { what: 'memory without a size', args: ['--memory', 'lots'], says: ['memory', '"lots"', 'not a size'] },
  { what: 'memory too small', args: ['--memory', '32M'], says: ['memory', '"32M"', 'outside'] },
  { what: 'memory more than the host has', args: ['--memory', overHost], says: ['memory', `"${overHost}"`, 'more than this host has'] },
  { what: 'memory not whole MiB', args: ['--memory', '100.5M'], says: ['memory', '"100.5M"', 'whole number of MiB'] },
  { what: 'vcpus 0', args: ['--vcpus', '0'], says: ['vcpus', '"0"'] },
  { what: 'vcpus in words', args: ['--vcpus', 'two'], says: ['vcpus', '"two"'] },
  { what: 'vcpus over the limit', args: ['--vcpus', '513'], says: ['vcpus', '"513"'] },
  { what: '/var too small', args: ['--var-size', '1K'], says: ['varSize', '"1K"'] },
  { what: '/var too big', args: ['--var-size', '100T'], says: ['varSize', '"100T"'] },
  { what: 'network not a name', args: ['--network', 'bad net'], says: ['network', '"bad net"'] },
  { what: 'network not on this host', args: ['--network', 'flp6-nosuchnet'], says: ['network', '"flp6-nosuchnet"', 'not a libvirt network on this host'] },
  { what: 'base channel not a name', args: ['--base', 'Bad Channel'], says: ['base channel', '"Bad Channel"'] },
  { what: 'base channel with no image', args: ['--base', 'nochannel'], says: ['base channel', '"nochannel"', 'no'] },
  { what: 'arch unknown', args: ['--arch', 'riscv64'], says: ['arch', '"riscv64"'] },
  { what: 'DNS server a name', args: ['--dns', '9.9.9.9,dns.example'], says: ['DNS server', '"dns.example"', 'not an IP address'] },
  { what: 'DNS server out of range', args: ['--dns', '300.1.1.1'], says: ['DNS server', '"300.1.1.1"'] },
  { what: 'hosts line without a name', args: ['--host', '10.0.0.5'], says: ['hosts line', '"10.0.0.5"'] },
  { what: 'hosts line without an address', args: ['--host', 'db.example 10.0.0.5'], says: ['hosts line', 'address "db.example"'] },
  { what: 'TCP port twice', args: ['--tcp-ports', '22,80,22'], says: ['tcp port', '22', 'listed twice'] },
  { what: 'TCP port 0', args: ['--tcp-ports', '0'], says: ['tcp port', '"0"'] },
  { what: 'UDP port too high', args: ['--udp-ports', '70000'], says: ['udp port', '"70000"'] },
  { what: 'UDP port a word', args: ['--udp-ports', '53,abc'], says: ['udp port', '"abc"'] },
  { what: 'admin key that does not parse', args: ['--admin-key', badKey], says: ['admin authorized key', `"${badKey}"`, 'not an SSH public key'] },
  { what: 'user key file that does not exist', args: ['--user-key', '/nonexistent/key.pub'], says: ['user authorized key', '"/nonexistent/key.pub"'] },
]

type Json = Record<string, unknown>
interface DefinitionCase {
  what: string
  /** Changes the copied definition: machine.json (as an object or raw text) or identity files. */
  edit: (json: Json, goodJson: Json) => { json?: Json; raw?: string; files?: Record<string, string> }
  says: string[]
  /** The message names this machine too (a value shared with it). */
  alsoNames?: string
}

const definitionCases: DefinitionCase[] = [
  { what: 'unknown field', edit: (j) => ({ json: { ...j, memroy: '1G' } }), says: ['machine.json', 'unknown field "memroy"'] },
  { what: 'not JSON', edit: () => ({ raw: '{ "memory": "1G",' }), says: ['machine.json', 'not valid JSON'] },
  { what: 'a field missing', edit: ({ mac: _mac, ...j }) => ({ json: j }), says: ['machine.json', 'field "mac"', 'undefined'] },
  { what: 'memory with a bad unit', edit: (j) => ({ json: { ...j, memory: '12Q' } }), says: ['memory', '"12Q"'] },
  { what: 'memory more than the host has', edit: (j) => ({ json: { ...j, memory: overHost } }), says: ['memory', `"${overHost}"`, 'more than this host has'] },
  { what: 'vcpus as a string', edit: (j) => ({ json: { ...j, vcpus: '2' } }), says: ['vcpus', '"2"'] },
  { what: 'vcpus 0', edit: (j) => ({ json: { ...j, vcpus: 0 } }), says: ['vcpus', '"0"'] },
  { what: '/var too small', edit: (j) => ({ json: { ...j, varSize: '1K' } }), says: ['varSize', '"1K"'] },
  { what: 'network not a name', edit: (j) => ({ json: { ...j, network: 'a b' } }), says: ['network', '"a b"'] },
  { what: 'network not on this host', edit: (j) => ({ json: { ...j, network: 'flp6-nosuchnet' } }), says: ['network', '"flp6-nosuchnet"'] },
  { what: 'MAC malformed', edit: (j) => ({ json: { ...j, mac: 'zz' } }), says: ['mac', '"zz"'] },
  { what: 'MAC of another machine', edit: (j, g) => ({ json: { ...j, mac: g.mac } }), says: ['mac'], alsoNames: good },
  { what: 'UUID malformed', edit: (j) => ({ json: { ...j, uuid: 'x' } }), says: ['uuid', '"x"'] },
  { what: 'UUID of another machine', edit: (j, g) => ({ json: { ...j, uuid: g.uuid } }), says: ['uuid'], alsoNames: good },
  { what: 'SSH forward port of another machine', edit: (j, g) => ({ json: { ...j, network: 'user', sshPort: g.sshPort } }), says: ['sshPort'], alsoNames: good },
  { what: 'SSH forward port too high', edit: (j) => ({ json: { ...j, network: 'user', sshPort: 70000 } }), says: ['sshPort', '"70000"'] },
  { what: 'arch unknown', edit: (j) => ({ json: { ...j, arch: 'riscv64' } }), says: ['arch', '"riscv64"'] },
  { what: 'base channel not a name', edit: (j) => ({ json: { ...j, base: 'Bad Channel' } }), says: ['base channel', '"Bad Channel"'] },
  { what: 'tcp_ports with a word', edit: () => ({ files: { tcp_ports: '22\nabc\n' } }), says: ['tcp_ports', 'tcp port "abc"'] },
  { what: 'udp_ports twice', edit: () => ({ files: { udp_ports: '53\n53\n' } }), says: ['udp_ports', 'udp port 53 is listed twice'] },
  { what: 'authorized key that does not parse', edit: () => ({ files: { admin_authorized_keys: `${badKey}\n` } }), says: ['admin_authorized_keys', `"${badKey}"`] },
  { what: 'resolv.conf nameserver a name', edit: () => ({ files: { 'resolv.conf': 'nameserver dns.example\n' } }), says: ['resolv.conf', '"dns.example"'] },
  { what: 'machine-id malformed', edit: () => ({ files: { 'machine-id': 'xyz\n' } }), says: ['machine-id', '"xyz"'] },
  { what: 'hosts line without a name', edit: () => ({ files: { hosts: '10.0.0.5\n' } }), says: ['hosts', '"10.0.0.5"'] },
]

function snapshot(dir: string): Record<string, string> {
  return existsSync(dir) ? Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'latin1')])) : {}
}

async function nothingCreated(name: string): Promise<void> {
  expect(existsSync(join(sb.state, 'vms', name)), `vms/${name}`).toBe(false)
  expect(existsSync(join(sb.repo, 'libvirt', `${name}.xml`)), `libvirt/${name}.xml`).toBe(false)
  expect((await virsh(['domstate', name])).code, `domain ${name}`).not.toBe(0)
}

describe.skipIf(libvirtMissing)('bad inputs are refused, named, and leave nothing behind', () => {
  let goodJson: Json = {}
  beforeAll(async () => {
    await blankImage(join(sb.dir, 'base.qcow2'))
    expect((await fleet(sb, ['image', 'import', join(sb.dir, 'base.qcow2'), '--name', 'base'])).code).toBe(0)
    const r = await fleet(sb, ['create-vm', good, '--network', 'user', '--yes'])
    expect(r.code, r.stderr).toBe(0)
    goodJson = JSON.parse(readFileSync(join(sb.repo, 'machines', good, 'machine.json'), 'utf8')) as Json
  })
  afterAll(async () => {
    await virsh(['undefine', '--nvram', good])
    sb.cleanup()
  })

  it.each(flagCases.map((c, i) => ({ ...c, i })))('flags: $what', async ({ args, says, name: badName, i }) => {
    const name = badName ?? sb.name(`flag${i}`)
    const r = await fleet(sb, ['create-vm', name, ...args, '--yes'])
    expect(r.code, r.stderr).toBe(2)
    const message = r.stderr.split('\n')[0]!
    expect(message).toContain(`Error: machine ${name}: `)
    for (const s of says) expect(message).toContain(s)
    expect(r.stderr).toMatch(/^Try this: /m)
    expect(existsSync(join(sb.repo, 'machines', name)), `machines/${name}`).toBe(false)
    await nothingCreated(name)
  })

  it.each(definitionCases.map((c, i) => ({ ...c, i })))('machine.json or identity file: $what', async ({ edit, says, alsoNames, i }) => {
    const name = sb.name(`def${i}`)
    const dir = join(sb.repo, 'machines', name)
    cpSync(join(sb.repo, 'machines', good), dir, { recursive: true })
    // A definition of its own (as if checked out from git), then the one bad edit.
    const own: Json = { ...goodJson, network: 'none', mac: `52:54:00:ee:00:${i.toString(16).padStart(2, '0')}`, uuid: randomUUID() }
    delete own.sshPort
    writeFileSync(join(dir, 'hostname'), `${name}\n`)
    writeFileSync(join(dir, 'machine-id'), `${randomUUID().replace(/-/g, '')}\n`)
    const change = edit(own, goodJson)
    writeFileSync(join(dir, 'machine.json'), change.raw ?? JSON.stringify(change.json ?? own, null, 2) + '\n')
    for (const [f, content] of Object.entries(change.files ?? {})) writeFileSync(join(dir, f), content)
    const before = snapshot(dir)
    try {
      const r = await fleet(sb, ['create-vm', name])
      expect(r.code, r.stderr).toBe(2)
      const message = r.stderr.split('\n')[0]!
      expect(message).toContain(`machine ${name}`)
      if (alsoNames) expect(message).toContain(`machine ${alsoNames}`)
      for (const s of says) expect(message).toContain(s)
      expect(snapshot(dir), 'the definition is left as it was').toEqual(before)
      await nothingCreated(name)
    } finally {
      rmSync(dir, { recursive: true, force: true }) // a broken definition would stop every later create-vm
    }
  })

  it('has at least 25 cases each way', () => {
    expect(flagCases.length).toBeGreaterThanOrEqual(25)
    expect(definitionCases.length).toBeGreaterThanOrEqual(24)
  })
})
