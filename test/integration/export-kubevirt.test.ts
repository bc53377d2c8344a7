// fleet export kubevirt, checked with other people's tools: the VirtualMachine against KubeVirt's
// own OpenAPI schema (ajv; unknown fields are errors), the OCI archives with skopeo and umoci
// (one layer, /disk/FILE.qcow2 owned 107:107, byte-equal to the store image), the /var template
// with blkid. Plus: idempotent re-runs, a diff that never shows a secret, a kill that leaves no
// file under a final name, and bad input that changes nothing.
import { execa } from 'execa'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fleetKilled, sha256 } from '../helpers/faults.js'
import { FLEET, fleet, fleetJson, sandbox, virsh } from '../helpers/fleet.js'
import { KUBEVIRT_SPEC, kubevirtValidator } from '../helpers/kubevirt-schema.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'

const sb = sandbox()
const [a, b] = [sb.name('kva'), sb.name('kvb')]
const out = join(sb.dir, 'kubevirt')
const REGISTRY = 'localhost:5000/fleet'
interface Result { machines: { name: string; status: string; diff: string[] }[]; archives: { file: string; image: string; status: string }[]; next: string[] }
type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
const load = (n: string) => JSON.parse(readFileSync(join(out, `${n}.json`), 'utf8')) as { kind: string; items: Obj[] }
const vmOf = (n: string) => load(n).items.find((i) => i.kind === 'VirtualMachine')!
let digest = ''

describe('KubeVirt schema file', () => {
  it('is there (never skipped under CI)', () => {
    expect(existsSync(KUBEVIRT_SPEC), `${KUBEVIRT_SPEC} missing: put KubeVirt's openapi-spec.json in ../shared/kubevirt/ or set FLEET_KUBEVIRT_OPENAPI`).toBe(true)
  })
})

describe.skipIf(libvirtMissing || (!existsSync(KUBEVIRT_SPEC) && process.env.CI !== 'true'))('fleet export kubevirt', () => {
  beforeAll(async () => {
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(sb.dir, 'base.qcow2'), '64M'])
    // Some data, so "byte-equal" means something.
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 3M', join(sb.dir, 'base.qcow2')])
    const imp = await fleetJson<{ digest: string }>(sb, ['image', 'import', join(sb.dir, 'base.qcow2'), '--name', 'base'])
    digest = imp.digest
    for (const [n, mem, cpus] of [[a, '768M', '2'], [b, '1G', '1']] as const) {
      const r = await fleet(sb, ['create-vm', n, '--virt-type', 'qemu', '--memory', mem, '--vcpus', cpus, '--var-size', '128M', '--network', n === a ? 'user' : 'none', '--yes'])
      expect(r.code, r.stderr).toBe(0)
    }
  }, 180_000)
  afterAll(async () => {
    for (const n of [a, b]) await virsh(['undefine', '--nvram', n])
    sb.cleanup()
  })

  it('writes one List per machine and one archive per base digest and /var size; the VMs validate against KubeVirt\'s schema', async () => {
    const r = await fleetJson<Result>(sb, ['export', 'kubevirt', a, b, '--registry', REGISTRY, '--out', out])
    expect(r.machines.map((m) => m.status)).toEqual(['created', 'created'])
    expect(r.archives.map((x) => x.status)).toEqual(['written', 'written']) // shared: one base digest, one /var size
    expect(r.archives[0]!.image).toBe(`${REGISTRY}/fleet-base:sha256-${digest}`)
    expect(r.next.at(-1)).toBe(`kubectl apply -f ${join(out, `${a}.json`)} -f ${join(out, `${b}.json`)}`)
    expect(statSync(join(out, `${a}.json`)).mode & 0o777).toBe(0o600)

    const validate = kubevirtValidator('v1.VirtualMachine')
    for (const n of [a, b]) expect(validate(vmOf(n)), n).toEqual([])
    const vm = vmOf(a)
    const spec = vm.spec.template.spec
    expect(spec.domain.firmware.bootloader.efi.secureBoot).toBe(false)
    expect(spec.domain.memory.guest).toBe('768Mi')
    expect(spec.domain.cpu.cores).toBe(2)
    expect(vmOf(b).spec.template.spec.domain.memory.guest).toBe('1024Mi')
    expect(vm.metadata.labels['fleet-vm.github.com/machine']).toBe(a)
    expect(vm.metadata.labels['fleet-vm.github.com/fleet-id']).toBe(readFileSync(join(sb.state, 'fleet-id'), 'utf8').trim())
    expect(spec.volumes).toContainEqual({ name: 'boot', containerDisk: { image: `${REGISTRY}/fleet-base:sha256-${digest}` } })
    expect(spec.domain.devices.disks).toContainEqual({ name: 'identity', serial: 'fleet-identity', disk: { bus: 'virtio', readonly: true } })
    const secret = load(a).items.find((i) => i.kind === 'Secret')!
    expect(Buffer.from(secret.data['ssh_host_ed25519_key'], 'base64').toString()).toMatch(/BEGIN OPENSSH PRIVATE KEY/)
    expect(Buffer.from(secret.data['machine-id'], 'base64')).toEqual(readFileSync(join(sb.repo, 'machines', a, 'machine-id')))
  }, 120_000)

  it('fails validation for a broken manifest (a misspelt field, a wrong type, a missing required field)', () => {
    const validate = kubevirtValidator('v1.VirtualMachine')
    const misspelt = structuredClone(vmOf(a))
    misspelt.spec.template.spec.domain.firmware.bootloader.efi = { secureBot: false }
    expect(validate(misspelt).join('\n')).toMatch(/efi must NOT have additional properties.*secureBot/)
    const wrongType = structuredClone(vmOf(a))
    wrongType.spec.template.spec.domain.cpu.cores = '2'
    expect(validate(wrongType).join('\n')).toMatch(/cpu\/cores must be integer/)
    const noImage = structuredClone(vmOf(a))
    noImage.spec.template.spec.volumes[0].containerDisk = {}
    expect(validate(noImage).join('\n')).toMatch(/must have required property 'image'/)
  })

  it('skopeo sees one layer; umoci unpacks /disk/<digest>.qcow2 owned 107:107, byte-equal to the store image', async () => {
    const archive = join(out, `fleet-base_sha256-${digest}.oci.tar`)
    const inspect = JSON.parse((await execa('skopeo', ['inspect', `oci-archive:${archive}`])).stdout) as { Layers: string[]; Architecture: string }
    expect(inspect.Layers).toHaveLength(1)
    expect(inspect.Architecture).toBe('amd64')
    const layout = join(sb.dir, 'layout')
    mkdirSync(layout)
    await execa('tar', ['-xf', archive, '-C', layout])
    const tag = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0].annotations['org.opencontainers.image.ref.name']
    expect(tag).toBe(`sha256-${digest}`)
    const bundle = join(sb.dir, 'bundle')
    await execa('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle])
    expect(readdirSync(join(bundle, 'rootfs'))).toEqual(['disk'])
    const disk = join(bundle, 'rootfs', 'disk', `${digest}.qcow2`)
    expect(readdirSync(join(bundle, 'rootfs', 'disk'))).toEqual([`${digest}.qcow2`])
    const st = statSync(disk)
    expect([st.uid, st.gid]).toEqual([107, 107])
    expect(sha256(disk)).toBe(digest)
  }, 120_000)

  it('the /var template is ext4 labelled var with home/ and log/journal/ and no identity', async () => {
    const archive = join(out, 'fleet-var_v1-134217728.oci.tar')
    const inspect = JSON.parse((await execa('skopeo', ['inspect', `oci-archive:${archive}`])).stdout) as { Layers: string[] }
    expect(inspect.Layers).toHaveLength(1)
    const dir = join(sb.dir, 'var-layout')
    mkdirSync(dir)
    await execa('tar', ['-xf', archive, '-C', dir])
    const manifest = JSON.parse(readFileSync(join(dir, 'blobs', 'sha256', JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')).manifests[0].digest.slice(7)), 'utf8'))
    const layer = join(dir, 'blobs', 'sha256', manifest.layers[0].digest.slice(7))
    await execa('tar', ['-xf', layer, '-C', dir, 'disk/var.qcow2'])
    const raw = join(sb.dir, 'var.raw')
    await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', join(dir, 'disk', 'var.qcow2'), raw])
    expect((await execa('blkid', ['-o', 'value', '-s', 'LABEL', raw])).stdout.trim()).toBe('var')
    expect((await execa('blkid', ['-o', 'value', '-s', 'TYPE', raw])).stdout.trim()).toBe('ext4')
    const ls = (await execa('debugfs', ['-R', 'ls -l /', raw])).stdout
    expect(ls).toMatch(/ home\n/)
    expect(ls).not.toMatch(/identity/)
    expect((await execa('debugfs', ['-R', 'ls /log', raw])).stdout).toMatch(/journal/)
  }, 120_000)

  it('is idempotent: a re-run keeps every file; --dry-run shows a redacted diff after a change and writes nothing', async () => {
    const sums = Object.fromEntries(readdirSync(out).map((f) => [f, sha256(join(out, f))]))
    const r = await fleetJson<Result>(sb, ['export', 'kubevirt', a, b, '--registry', REGISTRY, '--out', out])
    expect(r.machines.map((m) => m.status)).toEqual(['unchanged', 'unchanged'])
    expect(r.archives.map((x) => x.status)).toEqual(['kept', 'kept'])
    expect(Object.fromEntries(readdirSync(out).map((f) => [f, sha256(join(out, f))]))).toEqual(sums)

    const mj = join(sb.repo, 'machines', a, 'machine.json')
    writeFileSync(mj, JSON.stringify({ ...JSON.parse(readFileSync(mj, 'utf8')), memory: '1G' }, null, 2))
    const dry = await fleet(sb, ['export', 'kubevirt', a, '--registry', REGISTRY, '--out', out, '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toMatch(/would be updated/)
    expect(dry.stdout).toMatch(/-\s+"guest": "768Mi"/)
    expect(dry.stdout).toMatch(/\+\s+"guest": "1024Mi"/)
    expect(dry.stdout).not.toMatch(/PRIVATE KEY|LS0tLS1CRUdJTi/) // no secret value, not even base64
    expect(Object.fromEntries(readdirSync(out).map((f) => [f, sha256(join(out, f))]))).toEqual(sums)
    const plan = await fleet(sb, ['plan', '--kubevirt', out])
    expect(plan.stdout).toMatch(new RegExp(`${a}\\s+changed`))
    expect(plan.stdout).toMatch(new RegExp(`${b}\\s+in sync`))
    expect(plan.stdout).not.toMatch(/PRIVATE KEY|LS0tLS1CRUdJTi/)
  }, 120_000)

  it('a kill before the rename leaves no file under a final name; the next run removes the temp file', async () => {
    const fresh = join(sb.dir, 'fresh')
    const k = await fleetKilled(sb, ['export', 'kubevirt', a, '--registry', REGISTRY, '--out', fresh], { env: { FLEET_TEST_KILL_AT: 'export:archive-rename' } })
    expect(k.signal).toBe('SIGKILL')
    expect(readdirSync(fresh).filter((f) => !f.includes('.tmp-'))).toEqual([])
    expect(readdirSync(fresh).some((f) => f.includes('.tmp-'))).toBe(true)
    const r = await fleetJson<Result>(sb, ['export', 'kubevirt', a, '--registry', REGISTRY, '--out', fresh])
    expect(r.archives.map((x) => x.status)).toEqual(['written', 'written'])
    expect(readdirSync(fresh).filter((f) => f.includes('.tmp-') || f.startsWith('.'))).toEqual([])
  }, 120_000)

  it('Ctrl-C at the archive step: exit 130, nothing left under --out', async () => {
    const dir = join(sb.dir, 'interrupted')
    const k = await fleetKilled(sb, ['export', 'kubevirt', a, '--registry', REGISTRY, '--out', dir], { env: { FLEET_TEST_SIGNAL_AT: 'export:archive:SIGINT' } })
    expect(k.code, k.stderr).toBe(130)
    expect(k.stderr).toMatch(/Interrupted by SIGINT/)
    expect(readdirSync(dir)).toEqual([])
  })

  it('Ctrl-C while the base image streams into its archive: exit 130, the partial archive removed, nothing left under --out', async () => {
    // A base big enough that the archive is still being written when the signal lands.
    const bigImage = join(sb.dir, 'big.qcow2')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', bigImage, '1G'])
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x3c 0 640M', bigImage])
    expect((await fleet(sb, ['image', 'import', bigImage, '--name', 'big'])).code).toBe(0)
    const c = sb.name('kvbig')
    expect((await fleet(sb, ['create-vm', c, '--virt-type', 'qemu', '--channel', 'big', '--network', 'none', '--var-size', '64M', '--yes'])).code).toBe(0)
    try {
      const dir = join(sb.dir, 'streaming')
      mkdirSync(dir)
      const child = execa(FLEET, ['export', 'kubevirt', c, '--registry', REGISTRY, '--out', dir], { env: sb.env, reject: false })
      // The signal once the archive's temp file holds part of the layer (never before, never after).
      let seen = 0
      for (const end = Date.now() + 60_000; Date.now() < end && child.exitCode === null; await new Promise((r) => setTimeout(r, 5))) {
        const tmp = readdirSync(dir).find((f) => f.includes('.tmp-'))
        seen = tmp ? (statSync(join(dir, tmp), { throwIfNoEntry: false })?.size ?? 0) : 0
        if (seen > 64 << 20) break
      }
      expect(seen, 'the archive was caught part way').toBeGreaterThan(64 << 20)
      child.kill('SIGINT')
      const r = await child
      expect(r.exitCode, String(r.stderr)).toBe(130)
      expect(String(r.stderr)).toMatch(/Interrupted by SIGINT/)
      expect(readdirSync(dir)).toEqual([])
    } finally {
      await virsh(['undefine', '--nvram', c])
    }
  }, 180_000)

  it('refuses a bad registry or an unknown machine, naming the value, and writes nothing', async () => {
    const none = join(sb.dir, 'none')
    const bad = await fleet(sb, ['export', 'kubevirt', a, '--registry', 'Bad Registry!', '--out', none])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--registry "Bad Registry!" is not a registry reference/)
    const unknown = await fleet(sb, ['export', 'kubevirt', 'nosuch', '--registry', REGISTRY, '--out', none])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/machine nosuch/)
    expect(existsSync(none)).toBe(false)
  })
})
