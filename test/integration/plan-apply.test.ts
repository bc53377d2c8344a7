// fleet plan / apply against the real libvirtd (no guest boots; one VM runs OVMF without a
// bootable disk to show a live redefine): creates, a redefine needing a restart, a live one that
// restarts nothing, upgrades onto a new image, an orphan of this fleet, and a foreign domain of a
// machine's name that is reported and never touched. Also create-vm/destroy-vm with several names.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blankImage, fleet, fleetJson, sandbox, virsh } from '../helpers/fleet.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'

const sb = sandbox()
const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => sb.name(n)) as [string, string, string, string]
const HW = ['--memory', '256M', '--vcpus', '1', '--var-size', '64M', '--network', 'none', '--yes']

interface Change { field: string; from: string; to: string; apply: 'live' | 'restart' }
interface Entry { name: string; action: string; pending: boolean; changes: Change[]; needsRestart: boolean; base?: { from: string; to: string } }
interface Plan { vms: Entry[]; pending: boolean }
interface Applied { vms: { name: string; action: string; outcome: string; restarted?: boolean; error?: string }[] }

const plan = async (env = sb.env) => fleetJson<Plan>({ env }, ['plan'])
const byName = (p: Plan) => Object.fromEntries(p.vms.map((v) => [v.name, v]))
const actions = (p: Plan, names: string[]) => names.map((n) => byName(p)[n]?.action)
const foreignXml = `<domain type='qemu'><name>${d}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><on_poweroff>destroy</on_poweroff><devices/></domain>`

describe.skipIf(libvirtMissing)('plan and apply', () => {
  beforeAll(async () => {
    await blankImage(join(sb.dir, 'v1.qcow2'), '64M')
    await blankImage(join(sb.dir, 'v2.qcow2'), '65M')
    await fleetJson(sb, ['image', 'import', join(sb.dir, 'v1.qcow2'), '--name', 'base'])
    // Four machine definitions, no VMs: made with create-vm and destroy-vm of several names.
    const made = await fleet(sb, ['create-vm', a, b, c, d, ...HW, '--json'])
    expect(made.code, made.stderr).toBe(0)
    expect((JSON.parse(made.stdout) as Applied).vms.map((v) => v.outcome)).toEqual(['created', 'created', 'created', 'created'])
    const gone = await fleet(sb, ['destroy-vm', a, b, c, d, '--delete-data', '--yes', '--json'])
    expect(gone.code, gone.stderr).toBe(0)
    for (const n of [a, b, c, d]) expect(existsSync(join(sb.state, 'vms', n, 'var.qcow2'))).toBe(false)
    // Another tool's domain with d's name.
    writeFileSync(join(sb.dir, 'd.xml'), foreignXml)
    expect((await virsh(['define', join(sb.dir, 'd.xml')])).code).toBe(0)
  }, 120_000)

  afterAll(async () => {
    for (const n of [a, b, c, d]) {
      await virsh(['destroy', n])
      await virsh(['undefine', '--nvram', n])
    }
    sb.cleanup()
  })

  it('plans three creates and reports the foreign domain; --detailed-exitcode says changes are pending', async () => {
    const p = await plan()
    expect(actions(p, [a, b, c, d])).toEqual(['create', 'create', 'create', 'foreign'])
    expect((await fleet(sb, ['plan', '--detailed-exitcode'])).code).toBe(5)
  })

  it('apply creates the three VMs in one process and never touches the foreign domain', async () => {
    const before = (await virsh(['dumpxml', '--inactive', d])).stdout
    const r = await fleet(sb, ['apply', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as Applied
    expect(out.vms.map((v) => [v.name, v.outcome])).toEqual([[a, 'created'], [b, 'created'], [c, 'created'], [d, 'skipped']])
    for (const n of [a, b, c]) expect((await virsh(['domstate', n])).stdout.trim()).toBe('shut off')
    expect((await virsh(['dumpxml', '--inactive', d])).stdout).toBe(before)
    expect(existsSync(join(sb.state, 'vms', d, 'boot.qcow2'))).toBe(false)
    expect(actions(await plan(), [a, b, c])).toEqual(['in-sync', 'in-sync', 'in-sync'])
  })

  it('a change libvirt applies live redefines a running VM without restarting it', async () => {
    expect((await fleet(sb, ['start-vm', a])).code).toBe(0)
    const id = (await virsh(['domid', a])).stdout.trim()
    const env = { ...sb.env, FLEET_ON_REBOOT: 'restart' }
    const p = byName(await plan(env))[a]!
    expect(p).toMatchObject({ action: 'redefine', needsRestart: false, changes: [{ field: 'onReboot', from: 'destroy', to: 'restart', apply: 'live' }] })
    const r = await fleet({ env }, ['apply', a, '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect((JSON.parse(r.stdout) as Applied).vms).toMatchObject([{ name: a, outcome: 'redefined', restarted: false }])
    expect((await virsh(['domid', a])).stdout.trim()).toBe(id) // the same qemu process
    expect((await virsh(['dumpxml', a])).stdout).toContain('<on_reboot>restart</on_reboot>') // live config too
    expect(byName(await plan(env))[a]!.action).toBe('in-sync')
    // Back to this test's setting, applied live again; then the VM is powered off for the rest.
    expect((await fleet(sb, ['apply', a])).code).toBe(0)
    expect((await virsh(['domid', a])).stdout.trim()).toBe(id)
    await virsh(['destroy', a])
  }, 60_000)

  it('a hand edit of machine.json shows one redefine needing a restart', async () => {
    const f = join(sb.repo, 'machines', b, 'machine.json')
    writeFileSync(f, readFileSync(f, 'utf8').replace('"memory": "256M"', '"memory": "320M"'))
    const p = await plan()
    expect(actions(p, [a, b, c])).toEqual(['in-sync', 'redefine', 'in-sync'])
    expect(byName(p)[b]!.changes).toEqual([{ field: 'memoryKiB', from: String(256 * 1024), to: String(320 * 1024), apply: 'restart' }])
  })

  it('a new image in the channel shows three upgrades; apply performs them; then all is in sync', async () => {
    const v2 = await fleetJson<{ digest: string }>(sb, ['image', 'import', join(sb.dir, 'v2.qcow2'), '--name', 'base'])
    const p = await plan()
    expect(actions(p, [a, b, c])).toEqual(['upgrade', 'upgrade', 'upgrade'])
    for (const n of [a, b, c]) expect(byName(p)[n]!.base!.to).toBe(v2.digest)
    const r = await fleet(sb, ['apply', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect((JSON.parse(r.stdout) as Applied).vms.filter((v) => v.name !== d).map((v) => v.outcome)).toEqual(['upgraded', 'upgraded', 'upgraded'])
    expect((await virsh(['dumpxml', '--inactive', b])).stdout).toContain(`<memory unit='KiB'>${320 * 1024}</memory>`)
    const after = await plan()
    expect(actions(after, [a, b, c, d])).toEqual(['in-sync', 'in-sync', 'in-sync', 'foreign'])
  }, 60_000)

  it('a domain of this fleet whose folder was removed is an orphan, destroyed only when confirmed, /var kept', async () => {
    renameSync(join(sb.repo, 'machines', c), join(sb.dir, 'c-definition'))
    expect(byName(await plan())[c]).toMatchObject({ action: 'orphan', pending: true })
    const refused = await fleet(sb, ['apply'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/not confirmed; nothing was changed/)
    expect((await virsh(['domstate', c])).code).toBe(0)
    const r = await fleet(sb, ['apply', c, '--yes', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect((JSON.parse(r.stdout) as Applied).vms).toMatchObject([{ name: c, outcome: 'destroyed' }])
    expect((await virsh(['domstate', c])).code).not.toBe(0)
    expect(existsSync(join(sb.state, 'vms', c, 'var.qcow2'))).toBe(true)
    expect(byName(await plan())[c]).toMatchObject({ action: 'orphan', pending: false })
  }, 60_000)
})
