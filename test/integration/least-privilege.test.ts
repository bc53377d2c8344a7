// Least privilege on a real host: a VM's disks, identity and console are unreadable for other
// local users while the VM still boots (qemu runs as libvirt-qemu); a state directory qemu cannot
// reach is refused before anything is made; two fleets on one host give `web1` different MACs.
import { execa } from 'execa'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hostAddresses, qemuDacLabel } from '../../src/adapters/libvirt-host.js'
import { disconnect } from '../../src/adapters/libvirt.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { blankImage, fleet, sandbox, virsh, type Sandbox } from '../helpers/fleet.js'
import { buildTestImage, consoleLog, tail, waitForMarker } from '../helpers/guest.js'
import { treeSum } from '../helpers/tree-sum.js'

/** Every regular file under `dir`. */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
}

/** The files of `list` that uid/gid 65534 (nobody, no groups) can open for reading. */
async function readableByNobody(list: string[]): Promise<string[]> {
  const script = 'for f; do if cat -- "$f" >/dev/null 2>&1; then echo "$f"; fi; done'
  const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', script, 'sh', ...list])
  return r.stdout.split('\n').filter(Boolean)
}

const macOf = (sb: Sandbox, name: string) => (JSON.parse(readFileSync(join(sb.repo, 'machines', name, 'machine.json'), 'utf8')) as { mac: string }).mac

describe.skipIf(libvirtMissing)('least privilege', () => {
  const sb = sandbox()
  const vm = sb.name('private')
  beforeAll(async () => {
    await buildTestImage(join(sb.dir, 'v1.qcow2'), { version: 'v1' })
    const r = await fleet(sb, ['image', 'import', join(sb.dir, 'v1.qcow2'), '--name', 'base'])
    expect(r.code, r.stderr).toBe(0)
  })
  afterAll(async () => {
    await virsh(['destroy', vm])
    await virsh(['undefine', '--nvram', vm])
    sb.cleanup()
  })

  it('another local user can read no disk, identity, NVRAM or console file, while the VM boots', async () => {
    const t0 = performance.now()
    const r = await fleet(sb, ['create-vm', vm, '--memory', '512M', '--var-size', '256M', '--yes', '--start'])
    expect(r.code, r.stderr).toBe(0)
    const marker = await waitForMarker(sb, vm, 1)
    console.log(`create-vm --start → boot marker: ${Math.round(performance.now() - t0)} ms`)
    expect(marker['machine-id']).toBe(readFileSync(join(sb.repo, 'machines', vm, 'machine-id'), 'utf8').trim())
    expect(marker.hostname).toBe(vm)

    const dac = await qemuDacLabel()
    expect(dac, 'libvirt reports the DAC label qemu runs with').toBeDefined()
    for (const d of [join(sb.state, 'vms'), join(sb.state, 'vms', vm)]) {
      const st = statSync(d)
      expect((st.mode & 0o777).toString(8), d).toBe('710')
      expect(st.gid, `${d} group is qemu's`).toBe(dac!.gid)
    }
    const all = files(sb.state)
    const private_ = all.filter((f) => relative(sb.state, f).startsWith('vms/'))
    expect(private_.map((f) => relative(sb.state, f))).toEqual(expect.arrayContaining([`vms/${vm}/var.qcow2`, `vms/${vm}/boot.qcow2`, `vms/${vm}/console.log`]))
    const readable = await readableByNobody(all)
    console.log(`readable by nobody under the state dir: ${readable.map((f) => relative(sb.state, f)).join(', ')}`)
    // The check itself works: the shared base image and channels.json are meant to be readable.
    expect(readable).toContain(join(sb.state, 'images', 'channels.json'))
    expect(readable.filter((f) => private_.includes(f)), 'files holding /var data, identity or keys').toEqual([])
    expect(readable.filter((f) => !/^images\/|^fleet-id$|^ops\/|^locks\//.test(relative(sb.state, f))), 'only shared, non-secret files').toEqual([])
    expect(await readableByNobody([join(sb.repo, 'machines', vm, 'ssh_host_ed25519_key')])).toEqual([])
    expect(consoleLog(sb, vm), tail(consoleLog(sb, vm))).toContain('FLEET-TEST-MARKER')
  }, 300_000)
})

describe.skipIf(libvirtMissing)('a state directory qemu cannot reach', () => {
  const outer = mkdtempSync(join(tmpdir(), 'fleet-test-')) // 0700, as mktemp -d makes it
  const sb: Sandbox = { ...sandbox(), state: join(outer, 'state') }
  sb.env = { ...sb.env, FLEET_STATE_DIR: sb.state }
  const vm = sb.name('unreachable')
  afterAll(async () => {
    await virsh(['undefine', '--nvram', vm])
    rmSync(outer, { recursive: true, force: true })
    sb.cleanup()
  })

  it('is refused by create-vm before anything is made, naming the folder and the fix', async () => {
    expect(statSync(outer).mode & 0o777).toBe(0o700)
    mkdirSync(sb.state)
    await blankImage(join(outer, 'base.qcow2'))
    expect((await fleet(sb, ['image', 'import', join(outer, 'base.qcow2'), '--name', 'base'])).code).toBe(0)
    const before = treeSum(sb.repo, sb.state)
    const r = await fleet(sb, ['create-vm', vm, '--yes'])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toContain(`cannot enter ${outer} (drwx------`)
    expect(r.stderr).toMatch(new RegExp(`^Try this: .*chmod o\\+x ${outer}`, 'm'))
    expect(existsSync(join(sb.repo, 'machines', vm)), 'no definition written').toBe(false)
    expect(treeSum(sb.repo, sb.state).lines).toEqual(before.lines)
    expect((await virsh(['domstate', vm])).code).not.toBe(0)
    // The fix it names works.
    chmodSync(outer, 0o711)
    const ok = await fleet(sb, ['create-vm', vm, '--yes'])
    expect(ok.code, ok.stderr).toBe(0)
  })
})

describe.skipIf(libvirtMissing)('two fleets on one host', () => {
  const a = sandbox()
  const b = sandbox()
  const web1 = a.name('web1') // the same name in both fleets
  afterAll(async () => {
    await virsh(['undefine', '--nvram', web1])
    await disconnect()
    a.cleanup()
    b.cleanup()
  })

  it('each create web1 and get different MACs; the MAC is kept once written', async () => {
    for (const sb of [a, b]) {
      await blankImage(join(sb.dir, 'base.qcow2'))
      expect((await fleet(sb, ['image', 'import', join(sb.dir, 'base.qcow2'), '--name', 'base'])).code).toBe(0)
    }
    const ra = await fleet(a, ['create-vm', web1, '--network', 'user', '--yes'])
    expect(ra.code, ra.stderr).toBe(0)
    const macA = macOf(a, web1)
    // The host scan new machines are checked against sees fleet A's domain and its MAC.
    const host = await hostAddresses()
    expect(host.macs.get(macA)).toBe(web1)
    // One libvirt host holds one domain per name: fleet A lets go of its domain, keeping machines/web1.
    expect((await fleet(a, ['destroy-vm', web1])).code).toBe(0)
    const rb = await fleet(b, ['create-vm', web1, '--network', 'user', '--yes'])
    expect(rb.code, rb.stderr).toBe(0)
    const macB = macOf(b, web1)
    console.log(`web1: fleet A ${macA}, fleet B ${macB}`)
    for (const m of [macA, macB]) expect(m).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/)
    expect(macB).not.toBe(macA)
    const json = readFileSync(join(b.repo, 'machines', web1, 'machine.json'), 'utf8')
    expect((await fleet(b, ['define-vm', web1])).code).toBe(0)
    expect(readFileSync(join(b.repo, 'machines', web1, 'machine.json'), 'utf8')).toBe(json)
    // <mac address=…/> with passt, "…,mac=…" in <qemu:commandline> with slirp.
    expect((await virsh(['dumpxml', web1])).stdout).toMatch(new RegExp(`<mac address='${macB}'/>|,mac=${macB}`))
  })
})
