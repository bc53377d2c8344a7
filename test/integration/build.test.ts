// fleet build with the Nix builder, driven through the real executable with a fake `nix`
// (test/fixtures/fake-nix) that "builds" a small qcow2: store, channel, verify, compress and
// the error paths. The real Debian builder is exercised in test/e2e/debian.test.ts.
import { execa } from 'execa'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fleet, ROOT, sandbox, type Sandbox } from '../helpers/fleet.js'

const FAKE_NIX = join(ROOT, 'test', 'fixtures', 'fake-nix')

interface BuildJson {
  builder: string
  arch: string
  channel: string
  digest: string
  path: string
  format: string
  virtualSize: number
  compressed: boolean
  previous?: string
}

let sb: Sandbox
let env: Record<string, string>
beforeAll(() => {
  sb = sandbox()
  const store = join(sb.dir, 'nix-store')
  mkdirSync(store)
  env = { ...sb.env, NIX: FAKE_NIX, FAKE_NIX_STORE: store, FAKE_NIX_LOG: join(sb.dir, 'nix-args') }
})
afterAll(() => sb.cleanup())

// Blank images cannot boot: the boot verification is tested in test/e2e/verify.test.ts.
const build = (args: string[], extra: Record<string, string> = {}) => fleet({ env: { ...env, ...extra } }, ['build', '--no-verify', ...args], { timeoutMs: 60_000 })
const channels = (): Record<string, { digest: string; previous: string[] }> => {
  const f = join(sb.state, 'images', 'channels.json')
  return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : {}
}
const storeFiles = () => (existsSync(join(sb.state, 'images')) ? readdirSync(join(sb.state, 'images')).filter((f) => f.endsWith('.qcow2')) : [])
const sha256 = async (f: string) => (await execa('sha256sum', [f])).stdout.split(' ')[0]
const buildLeftovers = () => (existsSync(join(sb.state, 'build')) ? readdirSync(join(sb.state, 'build')) : [])

describe('fleet build --builder nix (fake nix)', () => {
  it('builds the flake output (nix progress on stderr, none under --json), stores a verified read-only image under its hash and moves the channel', async () => {
    const r = await build(['--builder', 'nix', '--arch', 'x86_64', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    const out = JSON.parse(r.stdout) as BuildJson
    expect(out).toMatchObject({ builder: 'nix', arch: 'x86_64', channel: 'base', format: 'qcow2', virtualSize: 96 * 1024 ** 2, compressed: false })
    expect(out.path).toBe(join(sb.state, 'images', `${out.digest}.qcow2`))
    expect(await sha256(out.path)).toBe(out.digest)
    expect(statSync(out.path).mode & 0o777).toBe(0o444)
    expect(channels().base!.digest).toBe(out.digest)
    const args = readFileSync(env.FAKE_NIX_LOG!, 'utf8').split('\n')
    expect(args).toContain('build')
    expect(args.some((a) => /^path:.*#packages\.x86_64-linux\.base-image$/.test(a))).toBe(true)
    expect(buildLeftovers()).toEqual([])
    const again = await build(['--builder', 'nix', '--arch', 'x86_64'])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stderr).toContain('fake-nix: [1/1 built] make-disk-image')
    expect(again.stdout).not.toContain('fake-nix')
  })

  it('--compress stores a zstd-compressed qcow2 and keeps the previous digest in the channel history', async () => {
    const before = channels().base!.digest
    const r = await build(['--builder', 'nix', '--compress', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as BuildJson
    expect(out.compressed).toBe(true)
    const info = JSON.parse((await execa('qemu-img', ['info', '-U', '--output=json', out.path])).stdout)
    expect(info['format-specific'].data['compression-type']).toBe('zstd')
    expect(channels().base).toMatchObject({ digest: out.digest, previous: [before] })
  })

  it('--arch aarch64 builds that system and moves only the aarch64 image of the channel', async () => {
    const x86 = channels().base!.digest
    const r = await build(['--builder', 'nix', '--arch', 'aarch64', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as BuildJson
    expect(readFileSync(env.FAKE_NIX_LOG!, 'utf8')).toMatch(/#packages\.aarch64-linux\.base-image/)
    expect(channels()['base@aarch64']!.digest).toBe(out.digest)
    expect(channels().base!.digest).toBe(x86)
  })

  it('--channel web builds the flake\'s web image and moves only that channel', async () => {
    const base = channels().base!.digest
    const r = await build(['--builder', 'nix', '--channel', 'web', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as BuildJson
    expect(readFileSync(env.FAKE_NIX_LOG!, 'utf8')).toMatch(/#packages\.x86_64-linux\.web-image$/m)
    expect(channels().web!.digest).toBe(out.digest)
    expect(channels().base!.digest).toBe(base)
  })

  it('picks the nix builder by default when nix is installed, and --dry-run builds and changes nothing', async () => {
    const files = storeFiles()
    const before = JSON.stringify(channels())
    const r = await build(['--dry-run', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ builder: 'nix', dryRun: true })
    expect(storeFiles()).toEqual(files)
    expect(JSON.stringify(channels())).toBe(before)
  })

  it.each([
    ['nix is missing', { NIX: '/nonexistent/nix' }, 2, /nix is not installed[\s\S]*Install Nix[\s\S]*--builder debian/],
    ['the nix build fails', { FAKE_NIX_MODE: 'fail' }, 3, /builder for '\/nix\/store\/xxx-nixos-disk-image\.drv' failed/],
    ['the output is raw, not qcow2', { FAKE_NIX_MODE: 'raw' }, 2, /is raw, not qcow2/],
    ['the output has a backing file', { FAKE_NIX_MODE: 'backing' }, 2, /has a backing file/],
    ['the output holds no image', { FAKE_NIX_MODE: 'empty' }, 2, /no \.qcow2 file/],
  ])('%s: a clear error, no stack trace, and the store and channels untouched', async (_label, extra, code, message) => {
    const files = storeFiles()
    const before = JSON.stringify(channels())
    const r = await build(['--builder', 'nix'], extra)
    expect(r.code).toBe(code)
    expect(r.stderr).toMatch(message)
    expect(r.stderr).not.toMatch(/\n\s+at .+\.js:\d+/)
    expect(storeFiles()).toEqual(files)
    expect(JSON.stringify(channels())).toBe(before)
    expect(buildLeftovers()).toEqual([])
  })

  it('refuses a bad channel name before building', async () => {
    const r = await build(['--builder', 'nix', '--channel', 'no/slash'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no\/slash/)
  })
})
