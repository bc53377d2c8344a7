// An image is promoted only after it proves the guest contract (docs/guest-contract.md): the
// tiny test image (test/image), "built" by the fake nix, boots in a throwaway domain under TCG.
// A good one moves the channel; one whose identity step is removed (--break-contract identity)
// is refused and the channel stays; Ctrl-C and kill -9 during the boot leave no domain behind.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fleetKilled, orphans } from '../helpers/faults.js'
import { fleet, ROOT, sandbox, virsh } from '../helpers/fleet.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { buildTestImage } from '../helpers/guest.js'

const sb = sandbox()
const store = join(sb.dir, 'nix-store')
const env = { ...sb.env, NIX: join(ROOT, 'test', 'fixtures', 'fake-nix'), FAKE_NIX_STORE: store }
const channels = (): Record<string, { digest: string; previous: string[] }> => JSON.parse(readFileSync(join(sb.state, 'images', 'channels.json'), 'utf8'))
const storeFiles = () => readdirSync(join(sb.state, 'images')).filter((f) => f.endsWith('.qcow2')).sort()
const fleetId = () => readFileSync(join(sb.state, 'fleet-id'), 'utf8').trim()
/** This sandbox's throwaway domains still defined on the host. */
async function verifyDomains(): Promise<string[]> {
  const r = await virsh(['list', '--all', '--name'])
  return r.stdout.split('\n').map((s) => s.trim()).filter((n) => n.startsWith(`fleet-verify.${fleetId().slice(0, 8)}.`))
}

interface BuildJson { digest: string; seconds: Record<string, number>; verify?: { domain: string; virtType: string; seconds: number; line: string } }

describe.skipIf(libvirtMissing)('an image is promoted only after it proves the guest contract', () => {
  const t0 = performance.now()
  let good = ''
  beforeAll(() => mkdirSync(store))
  afterAll(async () => {
    for (const d of existsSync(join(sb.state, 'fleet-id')) ? await verifyDomains() : []) {
      await virsh(['destroy', d])
      await virsh(['undefine', '--nvram', d])
    }
    console.log(`verify suite: ${Math.round(performance.now() - t0)} ms`)
    sb.cleanup()
  })

  it('fleet build boots a good image in a throwaway domain, reports each phase, and moves the channel', async () => {
    const r = await fleet({ env: { ...env, FAKE_NIX_MODE: 'testimage' } }, ['build', '--builder', 'nix', '--json'], { timeoutMs: 300_000 })
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as BuildJson
    console.log(`good build: ${JSON.stringify(out.seconds)}; ${out.verify?.line}`)
    expect(Object.keys(out.seconds)).toEqual(['nix build', 'copy', 'verify', 'store', 'total'])
    expect(out.verify).toMatchObject({ virtType: 'qemu' })
    expect(out.verify!.domain).toMatch(/^fleet-verify\.[0-9a-f]{8}\.verify-/)
    expect(out.verify!.line).toMatch(/^FLEET-SELF-CHECK machine-id=[0-9a-f]{32} root=ro var=var hostkey=AAAA\S+$/)
    expect(channels().base!.digest).toBe(out.digest)
    good = out.digest
    expect(await verifyDomains()).toEqual([])
    expect(await orphans(sb)).toEqual([])
  }, 300_000)

  it('image import --verify refuses an image whose identity step is removed: channel, store unchanged; console log kept', async () => {
    const bad = join(sb.dir, 'broken.qcow2')
    await buildTestImage(bad, { version: 'broken', breakContract: 'identity' })
    const files = storeFiles()
    const r = await fleet(sb, ['image', 'import', bad, '--channel', 'base', '--verify'], { timeoutMs: 300_000 })
    console.log(r.stderr)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/did not prove the guest contract, so channel base was not moved: machine-id is 0123456789abcdef0123456789abcdef, not the identity's [0-9a-f]{32}/)
    expect(channels().base!.digest).toBe(good)
    expect(storeFiles()).toEqual(files)
    const kept = /console log in (\S+\.log)\./.exec(r.stderr)?.[1]
    expect(kept && existsSync(kept), r.stderr).toBe(true)
    expect(kept!.startsWith(join(sb.state, 'verify-logs'))).toBe(true)
    expect(readFileSync(kept!, 'utf8')).toContain('FLEET-SELF-CHECK machine-id=0123456789abcdef0123456789abcdef')
    expect(await verifyDomains()).toEqual([])
    expect(await orphans(sb)).toEqual([])
  }, 300_000)

  it('Ctrl-C while the guest boots: exit 130, the throwaway domain and its disks removed, channel unchanged', async () => {
    const r = await fleetKilled({ env: { ...env, FAKE_NIX_MODE: 'testimage' } }, ['build', '--builder', 'nix', '--channel', 'other'], { env: { FLEET_TEST_SIGNAL_AT: 'verify:wait:SIGINT' } })
    expect(r.code, r.stderr).toBe(130)
    expect(r.stderr).toMatch(/removed throwaway domain fleet-verify\./)
    expect(channels().other).toBeUndefined()
    expect(await verifyDomains()).toEqual([])
    expect(await orphans(sb)).toEqual([])
  }, 120_000)

  it('kill -9 while the guest boots: the next command removes the throwaway domain and its folder', async () => {
    const r = await fleetKilled({ env: { ...env, FAKE_NIX_MODE: 'testimage' } }, ['build', '--builder', 'nix', '--channel', 'other'], { env: { FLEET_TEST_KILL_AT: 'verify:wait' } })
    expect(r.signal).toBe('SIGKILL')
    expect(await verifyDomains()).toHaveLength(1)
    const rep = await fleet(sb, ['repair'])
    expect(rep.code, rep.stderr).toBe(0)
    expect(rep.stdout + rep.stderr).toMatch(/throwaway domain fleet-verify\./)
    expect(await verifyDomains()).toEqual([])
    expect(channels().other).toBeUndefined()
    expect(channels().base!.digest).toBe(good)
    expect(await orphans(sb)).toEqual([])
  }, 120_000)
})
