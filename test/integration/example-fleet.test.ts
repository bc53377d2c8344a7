// The repository root doubles as an example fleet: machines/ without private keys, and libvirt/
// holding exactly what `fleet build-libvirt-xml` writes for them. create-vm of a definition that
// has no host key pair makes one and says so, and one without admin_authorized_keys gets a login key.
import { execa } from 'execa'
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { blankImage, fleet, ROOT, sandbox } from '../helpers/fleet.js'

const sb = sandbox()
afterAll(() => sb.cleanup())

describe('the repository root as an example fleet', () => {
  it('libvirt/ is what `fleet build-libvirt-xml` writes for machines/ (fails when a committed file is stale)', async () => {
    const r = await execa('node', [join(ROOT, 'scripts', 'example-xml.mjs'), '--check'], { reject: false })
    expect(r.exitCode, String(r.stderr)).toBe(0)
    const machines = readdirSync(join(ROOT, 'machines')).filter((n) => existsSync(join(ROOT, 'machines', n, 'machine.json')))
    expect(machines.length).toBeGreaterThanOrEqual(2)
    expect(readdirSync(join(ROOT, 'libvirt')).filter((f) => f.endsWith('.xml')).sort()).toEqual(machines.map((n) => `${n}.xml`).sort())
  })

  it('commits no private host key', async () => {
    const r = await execa('git', ['-C', ROOT, 'ls-files', 'machines'], { reject: false })
    if (r.exitCode !== 0) return // not a git checkout (an unpacked tarball)
    expect(String(r.stdout).split('\n').filter((f) => /ssh_host_\w+_key$/.test(f))).toEqual([])
  })

  it.skipIf(libvirtMissing)('create-vm of an example machine makes the missing host key pair and says so', async () => {
    const name = sb.name('web1')
    const dir = join(sb.repo, 'machines', name)
    cpSync(join(ROOT, 'machines', 'web1'), dir, { recursive: true })
    for (const f of ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub']) if (existsSync(join(dir, f))) throw new Error(`copied a host key: ${f}`)
    writeFileSync(join(dir, 'hostname'), `${name}\n`)
    // Its own MAC, UUID and port: the example's may be in use on this host.
    const json = JSON.parse(readFileSync(join(dir, 'machine.json'), 'utf8')) as Record<string, unknown>
    writeFileSync(join(dir, 'machine.json'), JSON.stringify({ ...json, mac: '52:54:00:e1:16:01', uuid: crypto.randomUUID(), sshPort: 2990 + Math.floor(Math.random() * 9) }, null, 2))
    await blankImage(join(sb.dir, 'base.qcow2'))
    expect((await fleet(sb, ['image', 'import', join(sb.dir, 'base.qcow2'), '--channel', 'base'])).code).toBe(0)

    // Refused for another reason (a bad hosts line): the key pair and login key it made are gone again.
    const goodHosts = readFileSync(join(dir, 'hosts'), 'utf8')
    writeFileSync(join(dir, 'hosts'), 'not-an-address web\n')
    const bad = await fleet(sb, ['create-vm', name])
    expect(bad.code, bad.stderr).toBe(2)
    expect(readdirSync(dir).filter((f) => /ssh_host|admin_authorized/.test(f))).toEqual([])
    writeFileSync(join(dir, 'hosts'), goodHosts)

    const dry = await fleet(sb, ['create-vm', name, '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stderr).toContain(`machine ${name}: ${dir} has no SSH host key pair; create-vm would make a new one`)
    expect(dry.stderr).toContain(`machine ${name}: ${dir} had no admin_authorized_keys; would write`)
    expect(existsSync(join(dir, 'admin_authorized_keys'))).toBe(false)
    expect(existsSync(join(dir, 'ssh_host_ed25519_key'))).toBe(false)

    const r = await fleet(sb, ['create-vm', name])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`machine ${name}: ${dir} had no SSH host key pair; made a new one`)
    expect(statSync(join(dir, 'ssh_host_ed25519_key')).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(dir, 'ssh_host_ed25519_key.pub'), 'utf8')).toMatch(/^ssh-ed25519 /)
    // No admin_authorized_keys in the example: the zero-configuration login key was written there.
    expect(r.stderr).toMatch(new RegExp(`machine ${name}: ${dir} had no admin_authorized_keys; wrote (your key|fleet's login key) `))
    expect(readFileSync(join(dir, 'admin_authorized_keys'), 'utf8')).toMatch(/^(ssh-ed25519|ecdsa-|ssh-rsa) \S+.*\n$/)
    expect((await fleet(sb, ['destroy-vm', name, '--delete-data', '--yes'])).code).toBe(0)
  })
})
