// The guest contract's identity disk (docs/guest-contract.md, "Identity from a disk"), booted for
// real (TCG, the tiny test image): an ISO9660 disk shaped like KubeVirt's Secret volume — built
// with genisoimage from the Secret `fleet export kubevirt` wrote, the way virt-launcher builds it
// — attached with serial fleet-identity to a VM whose /var holds an older identity. The guest copies
// it into /var/identity and boots as it; a changed Secret reaches it on the next boot; a malformed
// one is fatal and leaves /var/identity as it was.
import { execa } from 'execa'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fleet, sandbox, virsh } from '../helpers/fleet.js'
import { buildTestImage, consoleLog, tail, waitOff } from '../helpers/guest.js'
import { attachIdentityDisk, isoFromSecret as isoFromSecretOf } from '../helpers/identity-iso.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'

const sb = sandbox()
const name = sb.name('kvid')
const out = join(sb.dir, 'export')
const iso = join(sb.dir, 'identity.iso')
const machineDir = () => join(sb.repo, 'machines', name)

const isoFromSecret = (edit?: (files: Map<string, Buffer>) => void) => isoFromSecretOf(join(out, `${name}.json`), iso, edit)

const markers = () => [...consoleLog(sb, name).matchAll(/^FLEET-TEST-MARKER (.*)$/gm)].map((m) => Object.fromEntries(m[1]!.trim().split(' ').map((kv) => kv.split('='))) as Record<string, string>)

/** Boots once (the test image powers off at the end) and returns the n-th marker, or the FLEET-FATAL line. */
async function boot(n: number): Promise<Record<string, string> | string> {
  const before = consoleLog(sb, name).length
  const r = await virsh(['start', name])
  expect(r.code, r.stderr).toBe(0)
  await waitOff(sb, name, 240_000)
  for (let i = 0; i < 10 && markers().length < n && !/FLEET-FATAL/.test(consoleLog(sb, name).slice(before)); i++) await sleep(300)
  const fatal = /^FLEET-FATAL .*$/m.exec(consoleLog(sb, name).slice(before))
  if (fatal) return fatal[0]
  const m = markers()[n - 1]
  if (!m) throw new Error(`no marker #${n}\n${tail(consoleLog(sb, name))}`)
  return m
}

async function export_(): Promise<void> {
  const r = await fleet(sb, ['export', 'kubevirt', name, '--registry', 'localhost:5000/fleet', '--out', out])
  expect(r.code, r.stderr).toBe(0)
}

describe.skipIf(libvirtMissing)('identity disk (KubeVirt Secret volume) on a real boot', () => {
  beforeAll(async () => {
    await buildTestImage(join(sb.dir, 'base.qcow2'), { version: 'kv1' })
    expect((await fleet(sb, ['image', 'import', join(sb.dir, 'base.qcow2'), '--name', 'base'])).code).toBe(0)
    const r = await fleet(sb, ['create-vm', name, '--virt-type', 'qemu', '--memory', '512M', '--var-size', '64M', '--yes'])
    expect(r.code, r.stderr).toBe(0)
  }, 300_000)
  afterAll(async () => {
    await virsh(['destroy', name])
    await virsh(['undefine', '--nvram', name])
    sb.cleanup()
  })

  it('copies the Secret into /var/identity and boots as it; a changed Secret arrives on the next boot; a bad one is fatal', async () => {
    const onVar = readFileSync(join(machineDir(), 'machine-id'), 'utf8').trim()
    // The cluster's identity moves on: a new machine-id in machines/, exported, not written to /var.
    const idB = 'b'.repeat(32)
    writeFileSync(join(machineDir(), 'machine-id'), `${idB}\n`)
    await export_()
    await isoFromSecret()
    const a = await virsh(attachIdentityDisk(name, iso))
    expect(a.code, a.stderr).toBe(0)

    const m1 = await boot(1)
    expect(m1, tail(consoleLog(sb, name))).toMatchObject({ 'machine-id': idB, hostname: name, boot: '1' })
    expect(onVar).not.toBe(idB)
    expect(consoleLog(sb, name)).toMatch(/^FLEET-TEST-IDENTITY-DISK \/dev\/vd\w+ copied into \/var\/identity$/m)
    expect(consoleLog(sb, name)).toMatch(/^FLEET-TEST-IDENTITY ssh_host_ed25519_key mode=600 /m)
    expect(consoleLog(sb, name)).toMatch(/^FLEET-TEST-IDENTITY machine-id mode=644 /m)

    // A later change of the Secret (here machine-id and hosts) reaches the VM at its next boot.
    const idC = 'c'.repeat(32)
    writeFileSync(join(machineDir(), 'machine-id'), `${idC}\n`)
    writeFileSync(join(machineDir(), 'hosts'), '10.0.0.7 db\n')
    const dry = await fleet(sb, ['export', 'kubevirt', name, '--registry', 'localhost:5000/fleet', '--out', out, '--dry-run'])
    expect(dry.stdout).toMatch(/would be updated/)
    expect(dry.stdout).toMatch(/-\s+"machine-id": "<redacted: sha256:/)
    await export_()
    const files = await isoFromSecret()
    const m2 = (await boot(2)) as Record<string, string>
    expect(m2, tail(consoleLog(sb, name))).toMatchObject({ 'machine-id': idC, boot: '2' })
    expect(m2['data-sha256']).toBe((m1 as Record<string, string>)['data-sha256']) // /var's data kept
    expect(m2['hosts-sha256']).toBe(createHash('sha256').update(files.get('hosts')!).digest('hex'))

    // A malformed Secret: fatal before /var is touched.
    await isoFromSecret((f) => f.set('machine-id', Buffer.from('not-an-id\n')))
    const bad = await boot(3)
    expect(bad).toMatch(/^FLEET-FATAL identity disk \/dev\/vd\w+: machine-id missing or not 32 lowercase hex digits$/)

    // Without the disk the guest boots from /var/identity: still the last good Secret's identity.
    const d = await virsh(['detach-disk', name, 'vdc', '--config'])
    expect(d.code, d.stderr).toBe(0)
    const m3 = await boot(3)
    expect(m3, tail(consoleLog(sb, name))).toMatchObject({ 'machine-id': idC, boot: '3' })

    // A copy cut short between its two renames (a crash): no /var/identity, the previous one as
    // identity.old, the new one complete as identity.new — and the identity disk gone since. The
    // guest puts identity.old back and boots as it (not FLEET-FATAL), /var's data kept.
    const varDisk = join(sb.state, 'vms', name, 'var.qcow2')
    const env = { ...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: process.env.LIBGUESTFS_BACKEND_SETTINGS ?? 'force_tcg' }
    const idD = 'd'.repeat(32)
    await execa('guestfish', ['--rw', '--format=qcow2', '-a', varDisk, '--', 'run', ':', 'mount', '/dev/sda', '/',
      ':', 'cp-a', '/identity', '/identity.new', ':', 'write', '/identity.new/machine-id', `${idD}\n`,
      ':', 'mv', '/identity', '/identity.old', ':', 'umount', '/'], { env })
    const before = consoleLog(sb, name).length
    const m4 = await boot(4)
    expect(m4, tail(consoleLog(sb, name))).toMatchObject({ 'machine-id': idC, boot: '4' })
    expect((m4 as Record<string, string>)['data-sha256']).toBe((m1 as Record<string, string>)['data-sha256'])
    expect(consoleLog(sb, name).slice(before)).toMatch(/identity swap cut short by a crash: the previous identity \/var\/identity.old put back as \/var\/identity/)
  }, 900_000)
})
