// Ownership against the real libvirtd: fleet refuses domains another tool or another fleet (state
// directory) defined, changes nothing about them, and takes one over only with --adopt.
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { blankImage, fleet, sandbox, virsh } from '../helpers/fleet.js'

const a = sandbox() // fleet A
const b = sandbox() // fleet B: another repository and state directory on the same libvirtd
const foreign = a.name('foreign') // defined with plain virsh
const shared = a.name('shared') // made by fleet A, then met by fleet B

/** A domain that needs no disk and no firmware file: SeaBIOS finds nothing to boot and waits. */
function tinyDomainXml(name: string): string {
  return `<domain type='qemu'><name>${name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><on_poweroff>destroy</on_poweroff><devices/></domain>`
}

async function defineWithVirsh(dir: string, name: string, xml: string): Promise<void> {
  const f = join(dir, `${name}.xml`)
  writeFileSync(f, xml)
  const r = await virsh(['define', f])
  expect(r.code, r.stderr).toBe(0)
}

const state = async (name: string) => (await virsh(['domstate', name])).stdout.trim()
const xmlOf = async (name: string) => (await virsh(['dumpxml', '--inactive', name])).stdout
const idOf = (sb: { state: string }) => readFileSync(join(sb.state, 'fleet-id'), 'utf8').trim()

describe.skipIf(libvirtMissing)('ownership of libvirt domains', () => {
  beforeAll(async () => {
    for (const sb of [a, b]) {
      await blankImage(join(sb.dir, 'base.qcow2'))
      const r = await fleet(sb, ['image', 'import', join(sb.dir, 'base.qcow2'), '--name', 'base'])
      expect(r.code, r.stderr).toBe(0)
    }
    // fleet A makes `foreign` (machine and disks), which is then replaced by a plain virsh domain.
    for (const name of [foreign, shared]) {
      const r = await fleet(a, ['create-vm', name, '--memory', '256M', '--network', 'none', '--yes'])
      expect(r.code, r.stderr).toBe(0)
    }
    await virsh(['undefine', '--nvram', foreign])
    await defineWithVirsh(a.dir, foreign, tinyDomainXml(foreign))
    expect((await virsh(['start', foreign])).code).toBe(0)
  }, 180_000)

  afterAll(async () => {
    for (const n of [foreign, shared]) {
      await virsh(['destroy', n])
      await virsh(['undefine', '--nvram', n])
    }
    a.cleanup()
    b.cleanup()
  })

  it('the fleet id is made once and carried in the metadata of every domain fleet defines', async () => {
    expect(idOf(a)).toMatch(/^[0-9a-f-]{36}$/)
    expect(await xmlOf(shared)).toMatch(new RegExp(`<fleet:machine [^>]*fleet-id="${idOf(a)}"`))
    expect(readFileSync(join(a.repo, 'libvirt', `${shared}.xml`), 'utf8')).toContain(`fleet-id="${idOf(a)}"`)
  })

  it('destroy-vm --delete-data of a domain defined outside fleet exits 2, and it keeps running with its disks', async () => {
    const before = await xmlOf(foreign)
    const r = await fleet(a, ['destroy-vm', foreign, '--yes', '--delete-data'])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toContain(`machine ${foreign}: the libvirt domain ${foreign} has no fleet metadata: it was defined outside fleet`)
    expect(r.stderr).toMatch(/Try this: .*--adopt/)
    expect(await state(foreign)).toBe('running')
    expect(await xmlOf(foreign)).toBe(before)
    expect(existsSync(join(a.state, 'vms', foreign, 'var.qcow2'))).toBe(true)
    expect(existsSync(join(a.state, 'vms', foreign, 'boot.qcow2'))).toBe(true)
    const dry = await fleet(a, ['destroy-vm', foreign, '--dry-run'])
    expect(dry.code).toBe(2)
  })

  it('stop-vm (even --force), start-vm, define-vm and console refuse it too, changing nothing', async () => {
    const before = await xmlOf(foreign)
    for (const args of [['stop-vm', foreign, '--force', '--timeout', '1'], ['start-vm', foreign], ['define-vm', foreign], ['define-vm', foreign, '--dry-run'], ['console', foreign]]) {
      const r = await fleet(a, args)
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toContain(`the libvirt domain ${foreign} has no fleet metadata`)
    }
    expect(await state(foreign)).toBe('running')
    expect(await xmlOf(foreign)).toBe(before)
  })

  it("fleet B refuses fleet A's domain, naming A's fleet id and where its disks are", async () => {
    // B has a machine of that name, with disks in its own state directory.
    cpSync(join(a.repo, 'machines', shared), join(b.repo, 'machines', shared), { recursive: true })
    mkdirSync(join(b.state, 'vms', shared), { recursive: true })
    await blankImage(join(b.state, 'vms', shared, 'boot.qcow2'))
    await blankImage(join(b.state, 'vms', shared, 'var.qcow2'))
    expect((await virsh(['start', shared])).code).toBe(0)
    const before = await xmlOf(shared)
    for (const args of [['destroy-vm', shared, '--yes', '--delete-data'], ['stop-vm', shared, '--force', '--timeout', '1'], ['define-vm', shared]]) {
      const r = await fleet(b, args)
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toContain(`machine ${shared}: the libvirt domain ${shared} belongs to another fleet (id ${idOf(a)}, disks in ${join(a.state, 'vms', shared)})`)
    }
    expect(await state(shared)).toBe('running')
    expect(await xmlOf(shared)).toBe(before)
    expect(existsSync(join(b.state, 'vms', shared, 'var.qcow2'))).toBe(true)
    // Its own fleet may stop it.
    const stop = await fleet(a, ['stop-vm', shared, '--force', '--timeout', '1'])
    expect(stop.code, stop.stderr).toBe(0)
    expect(await state(shared)).toBe('shut off')
  })

  it('a domain an older fleet defined (metadata without id) is ours only if its disks are in our state directory', async () => {
    const legacy = (await xmlOf(shared)).replace(/ fleet-id="[^"]*"/, '')
    expect(legacy).not.toContain('fleet-id')
    await defineWithVirsh(a.dir, shared, legacy)
    const r = await fleet(b, ['stop-vm', shared])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`the libvirt domain ${shared} was defined by an older fleet that recorded no fleet id, from another state directory`)
    const ok = await fleet(a, ['define-vm', shared])
    expect(ok.code, ok.stderr).toBe(0)
    expect(await xmlOf(shared)).toContain(`fleet-id="${idOf(a)}"`) // the next define writes the id
  })

  it('--adopt takes a domain over: define-vm writes this fleet id, and the old fleet is refused from then on', async () => {
    const r = await fleet(b, ['define-vm', shared, '--adopt'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain('adopting it (--adopt)')
    const xml = await xmlOf(shared)
    expect(xml).toContain(`fleet-id="${idOf(b)}"`)
    expect(xml).toContain(join(b.state, 'vms', shared, 'boot.qcow2'))
    expect((await fleet(b, ['stop-vm', shared])).code).toBe(0)
    const refused = await fleet(a, ['destroy-vm', shared, '--yes', '--delete-data'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain(`belongs to another fleet (id ${idOf(b)}`)
    expect(existsSync(join(a.state, 'vms', shared, 'var.qcow2'))).toBe(true)
  })

  it('destroy-vm --adopt removes a foreign running domain', async () => {
    const r = await fleet(a, ['destroy-vm', foreign, '--adopt', '--timeout', '1', '--yes', '--delete-data'])
    expect(r.code, r.stderr).toBe(0)
    expect((await virsh(['domstate', foreign])).code).not.toBe(0)
    expect(existsSync(join(a.state, 'vms', foreign))).toBe(false)
  })

  it('destroy-vm never deletes outside <state>/vms: a vms/NAME that is a symlink is refused', async () => {
    const name = a.name('link')
    const elsewhere = join(a.dir, 'elsewhere')
    mkdirSync(elsewhere)
    writeFileSync(join(elsewhere, 'var.qcow2'), 'precious')
    symlinkSync(elsewhere, join(a.state, 'vms', name))
    const r = await fleet(a, ['destroy-vm', name, '--yes', '--delete-data'])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toContain(`refusing to delete ${join(a.state, 'vms', name)}: it is a symbolic link`)
    expect(readFileSync(join(elsewhere, 'var.qcow2'), 'utf8')).toBe('precious')
  })
})
