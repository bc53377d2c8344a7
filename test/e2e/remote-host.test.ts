// A VM on a second libvirt daemon reachable only through qemu+ssh:// on 127.0.0.1 (the session
// daemon of another local user, behind an sshd the test starts): fleet creates, boots (TCG),
// upgrades and destroys it there; the guest prints its own identity; the local state directory
// holds nothing of it but fleet's records; and no disk operation for it touches a local path
// (every file syscall of fleet and its children is traced).
import { execa } from 'execa'
import { createHash } from 'node:crypto'
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jumpThrough } from '../../src/adapters/remote-shell.js'
import { vmHost } from '../../src/hosts/host-uri.js'
import { FLEET, fleet, fleetJson, sandbox } from '../helpers/fleet.js'
import { buildTestImage, tail } from '../helpers/guest.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { startRemoteHost, type RemoteHost } from '../helpers/remote-host.js'

const sb = sandbox()
const vm = sb.name('far')
let host: RemoteHost
let m1digest = ''
let m2digest = ''

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** fleet under strace: every file syscall of it and its children, one line each. */
async function traced(args: string[], tag: string): Promise<{ code: number; stderr: string; files: string[] }> {
  const out = join(sb.dir, `strace-${tag}.txt`)
  const r = await execa('strace', ['-f', '-qq', '-e', 'trace=%file', '-o', out, FLEET, ...args], { env: sb.env, reject: false, timeout: 600_000 })
  return { code: r.exitCode ?? -1, stderr: String(r.stderr), files: readFileSync(out, 'utf8').split('\n') }
}

/** Syscalls that would be a disk operation of the VM on this machine: any path of its own, a disk image, a scratch folder. */
function localDiskTouches(lines: string[]): string[] {
  const store = join(sb.state, 'images')
  // Opening, creating, renaming, deleting or changing a file (an existence probe is not a disk operation; execve's argv is not a path).
  const op = /^\d+ (open|openat|openat2|creat|mkdir|mkdirat|rename|renameat|renameat2|unlink|unlinkat|rmdir|truncate|chmod|fchmodat|chown|fchownat|lchown|link|linkat|symlink|symlinkat|mknod|mknodat|utimensat)\(/
  return lines.filter((l) => {
    if (!op.test(l)) return false
    const paths = [...l.matchAll(/"([^"]*)"/g)].map((m) => m[1]!)
    return paths.some((p) => {
      if (p.startsWith(join(sb.state, 'vms')) || p.startsWith(join(sb.state, 'tmp'))) return true
      // The staging folders and files the local /var path makes (mkdtemp var-XXXXXX, identity.tar, var.raw).
      if (/\/var-[A-Za-z0-9]{6}(\/|$)|fleet-var|identity\.tar$|\.raw$|\.fd$/.test(p)) return true
      if (/\.qcow2$/.test(p)) return !(p.startsWith(store) && /O_RDONLY/.test(l) && !/O_CREAT|O_WRONLY|O_RDWR/.test(l)) // only the store image is read (to ship it)
      return false
    })
  })
}

/** The test guest powers off after printing its marker. */
async function waitOff(ms = 120_000): Promise<void> {
  const end = Date.now() + ms
  while ((await host.virsh(['domstate', vm])).stdout.trim() !== 'shut off') {
    if (Date.now() > end) throw new Error(`${vm} did not power off`)
    await sleep(1000)
  }
}

async function consoleText(): Promise<string> {
  const r = await fleet(sb, ['console', vm, '--log'])
  return r.code === 0 ? r.stdout.replace(/\r/g, '') : ''
}

async function waitMarker(count: number, ms = 240_000): Promise<Record<string, string>> {
  const end = Date.now() + ms
  for (;;) {
    const log = await consoleText()
    const found = [...log.matchAll(/^FLEET-TEST-MARKER (.*)$/gm)]
    if (found.length >= count) return Object.fromEntries(found[count - 1]![1]!.trim().split(' ').map((kv) => kv.split('=') as [string, string]))
    if (Date.now() > end) throw new Error(`no marker #${count}\n${tail(log)}`)
    await sleep(1000)
  }
}

describe.skipIf(libvirtMissing)('a VM on a remote libvirt host (qemu+ssh:// on loopback)', () => {
  beforeAll(async () => {
    host = await startRemoteHost(join(sb.dir, 'remote'))
    await buildTestImage(join(sb.dir, 'v1.qcow2'), { version: 'v1' })
    await buildTestImage(join(sb.dir, 'v2.qcow2'), { version: 'v2' })
    const r = await fleet(sb, ['image', 'import', join(sb.dir, 'v1.qcow2'), '--name', 'base'])
    expect(r.code, r.stderr).toBe(0)
  }, 300_000)
  afterAll(async () => {
    if (host) {
      await host.virsh(['destroy', vm])
      await host.virsh(['undefine', '--nvram', vm])
      const vols = (await host.virsh(['vol-list', '--pool', 'fleet'])).stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '')
      for (const v of vols.filter((x) => x.startsWith(vm) || (m1digest && x.includes(m1digest)) || (m2digest && x.includes(m2digest)))) await host.virsh(['vol-delete', '--pool', 'fleet', v])
      await host.stop()
    }
    sb.cleanup()
  })

  it('the local-disk check itself flags what the local path does', () => {
    const touches = localDiskTouches([
      `1 openat(AT_FDCWD, "${join(sb.state, 'vms', vm, 'var.qcow2')}", O_RDWR|O_CREAT|O_CLOEXEC, 0600) = 3`,
      `2 mkdir("${join(sb.state, 'tmp', 'create-x', 'var-AbC123')}", 0700) = 0`,
      `3 openat(AT_FDCWD, "${join(sb.state, 'images', 'a.qcow2')}", O_RDONLY|O_CLOEXEC) = 3`,
      `4 access("${join(sb.state, 'vms', vm)}", F_OK) = -1 ENOENT (No such file or directory)`,
    ])
    expect(touches.map((l) => l.split(' ')[0])).toEqual(['1', '2'])
  })

  it('reaches an address only the host sees through the host (the ProxyCommand fleet ssh uses)', async () => {
    const login = vmHost(host.uri).ssh!
    // The host's own sshd, as seen from the host: 127.0.0.1:PORT there, entered through the host.
    const r = await execa('ssh', ['-o', `ProxyCommand=${jumpThrough(login).map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ')}`, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
      '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-i', host.key, '-p', String(host.port), 'fleetremote@127.0.0.1', '--', 'echo', 'through'], { reject: false })
    expect(r.exitCode, String(r.stderr)).toBe(0)
    expect(String(r.stdout).trim()).toBe('through')
  })

  it('a create killed (SIGKILL) part way is rolled back by the next command, on the host too', async () => {
    const k = sb.name('killed')
    const child = execa(FLEET, ['create-vm', k, '--libvirt-host', host.uri, '--network', 'none', '--var-size', '256M', '--yes'], { env: sb.env, reject: false })
    const end = Date.now() + 120_000
    // Killed once its /var volume exists on the host (the base shipped, the boot overlay made).
    while (!(await host.virsh(['vol-list', '--pool', 'fleet'])).stdout.includes(`${k}.var.raw`)) {
      if (Date.now() > end) throw new Error(`no ${k}.var.raw appeared: ${(await child).stderr}`)
      await sleep(50)
    }
    child.kill('SIGKILL')
    await child
    expect((await host.virsh(['vol-list', '--pool', 'fleet'])).stdout).toContain(`${k}.boot.`)
    const r = await fleet(sb, ['repair'])
    expect(r.code, r.stderr).toBe(0)
    expect(existsSync(join(sb.repo, 'machines', k)), 'the new definition is rolled back').toBe(false)
    expect((await host.virsh(['vol-list', '--pool', 'fleet'])).stdout).not.toContain(k)
    expect((await host.virsh(['domstate', k])).code).not.toBe(0)
  }, 300_000)

  it('two creates that need the same base the host lacks ship it once and both succeed', async () => {
    // Without the base's host-side lock the second would delete the first's upload as a partial one.
    await buildTestImage(join(sb.dir, 'v3.qcow2'), { version: 'v3' })
    const imp = await fleet(sb, ['image', 'import', join(sb.dir, 'v3.qcow2'), '--name', 'race'])
    expect(imp.code, imp.stderr).toBe(0)
    const names = [sb.name('race1'), sb.name('race2')]
    const runs = await Promise.all(names.map((n) => fleet(sb, ['create-vm', n, '--libvirt-host', host.uri, '--channel', 'race', '--network', 'none', '--var-size', '256M', '--yes'])))
    for (const r of runs) expect(r.code, r.stderr).toBe(0)
    const rows = (await fleetJson<{ vms: { name: string; baseDigest: string }[] }>(sb, ['list'])).vms.filter((v) => names.includes(v.name))
    const digest = rows[0]!.baseDigest
    expect(rows.map((r) => r.baseDigest)).toEqual([digest, digest])
    try {
      expect(runs.filter((r) => /Shipping base image/.test(r.stderr + r.stdout)), 'shipped by exactly one of them').toHaveLength(1)
      for (const n of names) {
        const d = await fleet(sb, ['destroy-vm', n, '--delete-data', '--yes'])
        expect(d.code, d.stderr).toBe(0)
        rmSync(join(sb.repo, 'machines', n), { recursive: true }) // out of machines/, as an admin would
      }
    } finally {
      // The pool outlives the test run: the next run must find this base unshipped again.
      for (const v of [`base-${digest}.complete`, `base-${digest}.qcow2`]) await host.virsh(['vol-delete', '--pool', 'fleet', v])
    }
  }, 420_000)

  it('an upgrade killed (SIGKILL) after it stopped the running VM is finished by the next command (the VM runs again on the new base, its agent answers); an image that fails the health check is rolled back and the VM runs on the old one', async () => {
    await Promise.all([
      buildTestImage(join(sb.dir, 's1.qcow2'), { version: 's1', stayUp: true }),
      buildTestImage(join(sb.dir, 's2.qcow2'), { version: 's2', stayUp: true }),
      buildTestImage(join(sb.dir, 's3bad.qcow2'), { version: 's3bad', varLabel: 'nosuch', stayUp: true }),
    ])
    expect((await fleet(sb, ['image', 'import', join(sb.dir, 's1.qcow2'), '--name', 'up'])).code).toBe(0)
    const k = sb.name('kup')
    const digests: string[] = []
    const state = async () => (await host.virsh(['domstate', k])).stdout.trim()
    const digestOf = async () => (await fleetJson<{ vms: { name: string; baseDigest: string }[] }>(sb, ['list'])).vms.find((v) => v.name === k)!.baseDigest
    try {
      const c = await fleet(sb, ['create-vm', k, '--libvirt-host', host.uri, '--channel', 'up', '--network', 'none', '--memory', '512M', '--var-size', '256M', '--yes', '--start'])
      expect(c.code, c.stderr).toBe(0)
      digests.push(await digestOf())
      expect(await state()).toBe('running')
      expect((await fleet(sb, ['image', 'import', join(sb.dir, 's2.qcow2'), '--name', 'up'])).code).toBe(0)
      const killed = await execa(FLEET, ['upgrade', k, '--force', '--timeout', '60'], { env: { ...sb.env, FLEET_TEST_KILL_AT: 'remote-upgrade:stopped' }, reject: false })
      expect(killed.signal, String(killed.stderr)).toBe('SIGKILL')
      expect(await state(), 'the kill came after the stop').toBe('shut off')
      // The next upgrade first finishes the interrupted one (its intent record): on to s2 and started
      // again; then there is nothing left to do.
      const u = await fleet(sb, ['upgrade', k, '--force', '--timeout', '60', '--json'])
      expect(u.code, u.stderr).toBe(0)
      expect(await state(), 'it ran before the interrupted upgrade, so it runs after').toBe('running')
      const good = (JSON.parse(u.stdout) as { vms: { name: string; outcome: string }[] }).vms.find((v) => v.name === k)!
      expect(good.outcome).toBe('unchanged')
      // And it comes up: the stay-up guest answers its agent.
      for (let i = 0; (await host.virsh(['qemu-agent-command', k, '{"execute":"guest-ping"}'])).code !== 0; i++) {
        if (i > 120) throw new Error(`${k}: no guest agent answer 120 s after the finished upgrade`)
        await sleep(1000)
      }
      digests.push(await digestOf())
      expect(digests[1]).not.toBe(digests[0])
      expect((await host.virsh(['vol-list', '--pool', 'fleet'])).stdout, 'the owed start is paid').not.toContain(`${k}.upgrade-was-running`)

      // A bad image (its /var label wrong: the guest powers off with FLEET-FATAL) fails the check.
      expect((await fleet(sb, ['image', 'import', join(sb.dir, 's3bad.qcow2'), '--name', 'up'])).code).toBe(0)
      const bad = await fleet(sb, ['upgrade', k, '--force', '--timeout', '60', '--health', 'agent', '--health-timeout', '120', '--json'])
      expect(bad.code, bad.stderr).toBe(3)
      const report = JSON.parse(bad.stdout) as { stopped?: string; vms: { name: string; outcome: string; image: string; baseTo: string; healthy?: boolean }[] }
      const row = report.vms.find((v) => v.name === k)!
      expect(row.outcome).toBe('rolled back')
      expect(row.image).toBe(digests[1])
      expect(row.healthy, 'healthy again on the old image').toBe(true)
      expect(report.stopped).toMatch(new RegExp(k))
      expect(await state()).toBe('running')
      const back = await digestOf()
      expect(back).toBe(digests[1])
      digests.push(row.baseTo) // the bad image's base, shipped there too
    } finally {
      await fleet(sb, ['destroy-vm', k, '--delete-data', '--yes', '--timeout', '30'])
      rmSync(join(sb.repo, 'machines', k), { recursive: true, force: true })
      for (const d of digests) for (const v of [`base-${d}.complete`, `base-${d}.qcow2`]) await host.virsh(['vol-delete', '--pool', 'fleet', v])
    }
  }, 480_000)

  it('refuses a bad host URI naming the machine and the value, exit 2, nothing written', async () => {
    const bad = sb.name('bad')
    const r = await fleet(sb, ['create-vm', bad, '--libvirt-host', 'http://example.org/system', '--yes'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(bad)
    expect(r.stderr).toContain('http://example.org/system')
    expect(existsSync(join(sb.repo, 'machines', bad))).toBe(false)
  })

  it('creates, boots, upgrades and destroys it there; nothing of it is local; no local disk path is touched', async () => {
    let t0 = performance.now()
    const c = await traced(['create-vm', vm, '--libvirt-host', host.uri, '--network', 'none', '--memory', '512M', '--var-size', '256M', '--yes', '--start'], 'create')
    expect(c.code, c.stderr).toBe(0)
    console.log(`remote create-vm --start: ${Math.round(performance.now() - t0)} ms`)
    expect(localDiskTouches(c.files), 'create touched local disk paths').toEqual([])
    expect(JSON.parse(readFileSync(join(sb.repo, 'machines', vm, 'machine.json'), 'utf8')).host).toBe(host.uri)
    // The domain is on the remote daemon only.
    expect((await host.virsh(['domstate', vm])).code).toBe(0)
    expect((await execa('virsh', ['-c', 'qemu:///system', 'domstate', vm], { reject: false })).exitCode).not.toBe(0)
    const m1 = await waitMarker(1)
    m1digest = (await fleetJson<{ vms: { name: string; baseDigest: string }[] }>(sb, ['list'])).vms.find((v) => v.name === vm)!.baseDigest
    expect(m1['machine-id']).toBe(readFileSync(join(sb.repo, 'machines', vm, 'machine-id'), 'utf8').trim())
    expect(m1.hostname).toBe(vm)
    expect(m1.version).toBe('v1')
    // Nothing of it in the local state directory: no vms/NAME, no disk image but the store's.
    expect(existsSync(join(sb.state, 'vms', vm))).toBe(false)
    const images = readdirSync(sb.state, { recursive: true }).map(String).filter((f) => /\.(qcow2|raw|fd)$/.test(f))
    expect(images.every((f) => f.startsWith('images/'))).toBe(true)
    // The vol lives in the remote user's pool.
    const vols = (await host.virsh(['vol-list', '--pool', 'fleet'])).stdout
    expect(vols).toContain(`${vm}.var.raw`)
    expect(vols).toMatch(/base-[0-9a-f]{64}\.qcow2/)

    const hostsFile = join(sb.repo, 'machines', vm, 'hosts')
    expect(m1['hosts-sha256']).toBe(sha256(readFileSync(hostsFile)))
    // An identity change the upgrade must carry to the /var volume on the host.
    appendFileSync(hostsFile, '10.9.8.7 added-before-upgrade\n')
    const imp = await fleet(sb, ['image', 'import', join(sb.dir, 'v2.qcow2'), '--name', 'base'])
    expect(imp.code, imp.stderr).toBe(0)
    const planned = (await fleetJson<{ vms: { name: string; action: string }[] }>(sb, ['plan'])).vms.find((v) => v.name === vm)
    expect(planned?.action, 'plan asks the remote host: its VM is on the old base').toBe('upgrade')
    t0 = performance.now()
    const u = await traced(['upgrade', vm, '--force', '--timeout', '60'], 'upgrade')
    expect(u.code, u.stderr).toBe(0)
    console.log(`remote upgrade: ${Math.round(performance.now() - t0)} ms`)
    expect(localDiskTouches(u.files), 'upgrade touched local disk paths').toEqual([])
    expect((await fleetJson<{ vms: { name: string; action: string }[] }>(sb, ['plan'])).vms.find((v) => v.name === vm)?.action).toBe('in-sync')
    const st = await traced(['start-vm', vm], 'start')
    expect(st.code, st.stderr).toBe(0)
    const m2 = await waitMarker(2)
    expect(m2.version).toBe('v2')
    expect(m2['machine-id']).toBe(m1['machine-id'])
    expect(m2['hosts-sha256'], 'the changed hosts file reached /var/identity on the host').toBe(sha256(readFileSync(hostsFile)))
    expect(m2['hosts-sha256']).not.toBe(m1['hosts-sha256'])
    expect(m2.boot, '/var persisted across the upgrade (the guest counts its boots there)').toBe(String(Number(m1.boot) + 1))
    expect(m2['data-sha256'], 'and the data it wrote there').toBe(m1['data-sha256'])
    // The host's reference counts: the old base still backs the rollback point, the new one the current overlay.
    const hosts = (await fleetJson<{ hosts: { uri: string; vms: string[]; images: Record<string, number> }[] }>(sb, ['list', '--hosts'])).hosts
    const far = hosts.find((h) => h.uri === host.uri)!
    expect(far.vms).toEqual([vm])
    expect(far.images[m1digest], 'the old base backs the rollback point').toBe(1)
    const row = (await fleetJson<{ vms: { name: string; host: string; baseDigest: string }[] }>(sb, ['list'])).vms.find((v) => v.name === vm)!
    expect(row.host).toBe('fleetremote@127.0.0.1:' + host.port + '/session')
    expect(far.images[row.baseDigest]).toBe(1)
    m2digest = row.baseDigest
    // fleet's own record of it: libvirt/NAME.xml names the host's volumes, on the new overlay.
    expect(readFileSync(join(sb.repo, 'libvirt', `${vm}.xml`), 'utf8')).toContain(`${vm}.boot.${m2digest.slice(0, 16)}.qcow2`)

    // Rollback there: the domain back on the v1 overlay volume, /var untouched.
    const rb = await traced(['rollback', vm], 'rollback')
    expect(rb.code, rb.stderr).toBe(0)
    expect(localDiskTouches(rb.files), 'rollback touched local disk paths').toEqual([])
    await waitOff()
    expect((await fleet(sb, ['start-vm', vm])).code).toBe(0)
    const m3 = await waitMarker(3)
    expect(m3.version).toBe('v1')
    expect(m3['machine-id']).toBe(m1['machine-id'])
    expect(m3.boot).toBe(String(Number(m2.boot) + 1))

    const d = await traced(['destroy-vm', vm, '--delete-data', '--yes', '--timeout', '30'], 'destroy')
    expect(d.code, d.stderr).toBe(0)
    expect(localDiskTouches(d.files), 'destroy touched local disk paths').toEqual([])
    expect((await host.virsh(['domstate', vm])).code).not.toBe(0)
    expect((await host.virsh(['vol-list', '--pool', 'fleet'])).stdout).not.toContain(vm)
    // gc per host: the old base (no overlay uses it any more, no channel points at it) goes; the channel's stays.
    const g = await fleetJson<{ hosts: { host: string; deleted: string[] }[] }>(sb, ['gc'])
    expect(g.hosts).toHaveLength(1)
    expect(g.hosts[0]!.deleted).toContain(m1digest) // (and what earlier runs left unused there)
    expect(g.hosts[0]!.deleted).not.toContain(row.baseDigest)
    const left = (await host.virsh(['vol-list', '--pool', 'fleet'])).stdout
    expect(left).not.toContain(m1digest)
    expect(left).toContain(row.baseDigest)
  }, 900_000)
})
