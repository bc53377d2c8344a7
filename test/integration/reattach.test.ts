// destroy-vm keeps /var; create-vm brings the VM back on it — data kept, identity resynced —
// and an interrupted create-vm never removes a /var disk it did not make.
import { execa } from 'execa'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fleetKilled, orphans, sha256 } from '../helpers/faults.js'
import { blankImage, fleet, fleetJson, sandbox, virsh } from '../helpers/fleet.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { readVarDisks } from '../helpers/var-disk.js'

const sb = sandbox()
const vm = sb.name('keep')
const HW = ['--memory', '256M', '--vcpus', '1', '--var-size', '64M', '--network', 'none', '--yes']
const GF_ENV = { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' }

describe.skipIf(libvirtMissing)('create-vm on the /var disk destroy-vm kept', () => {
  let home = ''
  const varFile = join(sb.state, 'vms', vm, 'var.qcow2')
  beforeAll(async () => {
    await blankImage(join(sb.dir, 'a.qcow2'), '64M')
    await fleetJson(sb, ['image', 'import', join(sb.dir, 'a.qcow2'), '--name', 'base'])
    expect((await fleet(sb, ['create-vm', vm, ...HW])).code).toBe(0)
    const data = join(sb.dir, 'home.data')
    writeFileSync(data, randomBytes(128 * 1024))
    home = sha256(data)
    await execa('guestfish', ['--rw', '--format=qcow2', '-a', varFile, '--', 'run', ':', 'mount', '/dev/sda', '/', ':', 'upload', data, '/home/data'], { env: GF_ENV })
  }, 120_000)
  afterAll(async () => {
    await virsh(['undefine', '--nvram', vm])
    sb.cleanup()
  })

  it('killed before and after the resync, the next create-vm reuses the kept /var with its data', async () => {
    expect((await fleet(sb, ['destroy-vm', vm])).code).toBe(0)
    for (const at of ['create:var-disk', 'create:define']) {
      const k = await fleetKilled(sb, ['create-vm', vm], { env: { FLEET_TEST_KILL_AT: at } })
      expect(k.signal, `${at}: ${k.stderr}`).toBe('SIGKILL')
      expect(existsSync(varFile), at).toBe(true)
    }
    // The hostname changes in machines/: the reused disk must get the new identity.
    writeFileSync(join(sb.repo, 'machines', vm, 'hosts'), '10.1.2.3 changed.example\n')
    const r = await fleet(sb, ['create-vm', vm], { timeoutMs: 240_000 })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/recovered: rolled back the interrupted create-vm/)
    expect(r.stderr).toContain('Reusing the kept /var disk')
    expect(r.stdout).toContain('(the kept /var disk, reused; identity resynced)')
    expect(await orphans(sb)).toEqual([])
    const [disk] = await readVarDisks([varFile])
    expect(disk!.files['/identity/hosts']?.content).toBe(readFileSync(join(sb.repo, 'machines', vm, 'hosts'), 'utf8'))
    const out = join(sb.dir, 'out')
    mkdirSync(out, { recursive: true })
    await execa('guestfish', ['--ro', '--format=qcow2', '-a', varFile, '--', 'run', ':', 'mount-ro', '/dev/sda', '/', ':', 'download', '/home/data', join(out, 'data')], { env: GF_ENV })
    expect(sha256(join(out, 'data'))).toBe(home)
  }, 400_000)
})
