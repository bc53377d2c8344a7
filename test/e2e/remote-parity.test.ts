// A remote VM (machine.json "host" = qemu+ssh://…) is guarded as a local one is: a definition whose
// MAC or UUID another domain on THAT host uses is refused by create-vm (nothing made there or
// here); define-vm refuses one whose volumes are gone there (nothing defined); the console of a
// domain of its name there that is not this fleet's is not attached to (unless --adopt). No VM
// boots here: a blank base is enough, so this file stays fast.
// And the remote /var identity resync survives a kill inside a debugfs batch on the host: the next
// command puts the blocks back (undo files on the host) and syncs, every other byte of /var kept;
// one the guest mounted since keeps what the guest wrote.
import { spawn } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { shellQuote } from '../../src/adapters/remote-shell.js'
import { IDENTITY_FILES } from '../../src/machines/model.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blankImage, fleet, sandbox, type Sandbox } from '../helpers/fleet.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { startRemoteHost, type RemoteHost } from '../helpers/remote-host.js'

const a = sandbox()
const b = sandbox()
const vmA = a.name('pa')
const vmB = b.name('pb')
const vmC = a.name('pc')
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
      for (const n of [vmA, vmB, vmC]) {
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

  describe('the /var identity resync on the host, its debugfs killed inside a batch', () => {
    let vol = ''
    let undoDir = ''
    let dataSha = ''
    const sh = async (script: string, ...args: string[]) => host.ssh([['sh', '-c', `PATH=$PATH:/usr/sbin:/sbin; ${script}`, 'sh', ...args].map(shellQuote).join(' ')])
    const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
    const shaOn = async (p: string) => (await sh('debugfs -R "cat $2" "$1" 2>/dev/null | sha256sum', vol, p)).stdout.split(/\s/)[0]
    const undoFiles = async () => (await sh('ls "$1" 2>/dev/null | grep "[.]e2undo$" || true', undoDir)).stdout.split('\n').filter(Boolean)
    const fsckOn = async () => (await sh('e2fsck -f -n "$1" >/dev/null 2>&1', vol)).code
    /** machines/NAME's identity files as they are now. */
    const identityNow = () => new Map(IDENTITY_FILES.map((f) => join(a.repo, 'machines', vmC, f)).filter((p) => existsSync(p)).map((p) => [p.slice(p.lastIndexOf('/') + 1), sha(readFileSync(p))]))
    /** /var/identity on the host holds exactly these files (sha256 of each). */
    const expectIdentityOnHost = async (want: Map<string, string>) => {
      const names = (await sh('debugfs -R "ls -p /identity" "$1" 2>/dev/null', vol)).stdout.split('\n').map((l) => l.split('/')[5]).filter((n): n is string => !!n && n !== '.' && n !== '..')
      expect(names.sort()).toEqual([...want.keys()].sort())
      for (const [f, h] of want) expect(await shaOn(`/identity/${f}`), f).toBe(h)
    }
    /** A new identity (hosts) for the next upgrade to write. */
    const newIdentity = (tag: string) => writeFileSync(join(a.repo, 'machines', vmC, 'hosts'), Array.from({ length: 800 }, (_, i) => `10.9.${i >> 8}.${i & 255} h${i}-${tag}.example\n`).join(''))

    /**
     * Traces the host's resync shell for the volume from its start (root may ptrace the login's
     * processes): the n-th write (pwrite64) any of its children makes to the volume gets SIGKILL,
     * as a crash of debugfs would stop it there. Resolves once the trace is attached.
     */
    async function armKill(n: number): Promise<() => Promise<void>> {
      const deadline = Date.now() + 120_000
      for (;;) {
        for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
          let argv: string[]
          try {
            argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
          } catch {
            continue
          }
          if (argv[0] !== 'sh' || argv[1] !== '-c' || !argv[2]?.includes('e2undo') || argv[4] !== vol) continue
          const t = spawn('strace', ['-f', '-qq', '-o', '/dev/null', '-P', vol, '-e', 'trace=pwrite64', '-e', `inject=pwrite64:signal=KILL:when=${n}`, '-p', pid], { stdio: 'ignore' })
          const ended = new Promise<void>((res) => t.once('exit', () => res()))
          return async () => {
            await Promise.race([ended, sleep(5000)])
            if (t.exitCode === null) t.kill('SIGTERM')
          }
        }
        if (Date.now() > deadline) throw new Error('the resync never started on the host')
        await sleep(2)
      }
    }

    beforeAll(async () => {
      const r = await fleet(a, ['create-vm', vmC, '--libvirt-host', host.uri, '--network', 'user', '--memory', '256M', '--var-size', '64M', '--yes'], { timeoutMs: 300_000 })
      expect(r.code, r.stderr).toBe(0)
      vol = (await host.virsh(['vol-path', '--pool', 'fleet', `${vmC}.var.raw`])).stdout.trim()
      undoDir = `${(await sh('printf %s "$HOME"')).stdout}/.local/state/fleet/undo/${sha(vol).slice(0, 32)}`
      // 3 MiB the guest wrote to /var/home before any of this.
      const w = await sh('head -c 3145728 /dev/urandom > "$1.data" && debugfs -w -R "write $1.data /home/data" "$1" >/dev/null 2>&1 && sha256sum < "$1.data"; rm -f "$1.data"', vol)
      dataSha = w.stdout.split(/\s/)[0]!
      expect(dataSha).toMatch(/^[0-9a-f]{64}$/)
      expect(await shaOn('/home/data')).toBe(dataSha)
    }, 300_000)

    it('the killed batch is put back by the same run (old identity complete, data intact, e2fsck clean, no undo file), the upgrade fails; the next one syncs', async () => {
      const old = identityNow()
      await expectIdentityOnHost(old)
      let landed = 0
      for (let n = 2; n < 60 && !landed; n += 3) {
        newIdentity(`k${n}`)
        const armed = armKill(n)
        const r = await fleet(a, ['upgrade', vmC, '--timeout', '10'], { timeoutMs: 180_000 })
        await (await armed)()
        if (r.code === 0) break // the kill came after the last write: no batch was cut
        if (/the blocks it had written were put back/.test(r.stderr)) landed = n
        // Else it cut e2fsck -p (before the batches; exit 70), which the next run simply runs again.
        else expect(r.stderr, `the kill at write ${n}`).toMatch(/ssh failed \(exit 70\)/)
      }
      expect(landed, 'a kill landed inside a debugfs batch').toBeGreaterThan(0)
      console.log(`debugfs killed at the volume's write ${landed} of the resync`)
      await expectIdentityOnHost(old)
      expect(await shaOn('/home/data'), 'the data file').toBe(dataSha)
      expect(await fsckOn()).toBe(0)
      expect(await undoFiles()).toEqual([])
      const t0 = performance.now()
      const r = await fleet(a, ['upgrade', vmC, '--timeout', '10'], { timeoutMs: 180_000 })
      expect(r.code, r.stderr).toBe(0)
      console.log(`the next upgrade (resync with undo files) took ${Math.round(performance.now() - t0)} ms`)
      await expectIdentityOnHost(identityNow())
      expect(await shaOn('/home/data'), 'the data file').toBe(dataSha)
      expect(await fsckOn()).toBe(0)
      expect(await undoFiles()).toEqual([])
    }, 600_000)
  })
})
