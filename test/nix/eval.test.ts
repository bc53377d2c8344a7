// The flake in nix/ evaluated for real, offline, against NixOS 24.05: the nixpkgs tree from
// nixpkgs-24.05.tar.xz (by default ../shared/nix/ next to the repository; FLEET_NIXPKGS_TARBALL
// overrides) is unpacked once into a cache folder and given to the flake with
// --override-input. Debian's nix (2.8) evaluates it in a store under a private root (no
// daemon, no network). Every nixosConfigurations entry's toplevel and every image derivation
// must evaluate, for x86_64 and aarch64, for the shipped flake and for role images defined
// through its lib; a misspelt option must fail the evaluation. Under CI this never skips.
import { execFile } from 'node:child_process'
import { execa } from 'execa'
import { existsSync, readFileSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { installable } from '../../src/builders/nix.js'
import { initRepo } from '../../src/services/init.js'

const REPO = fileURLToPath(new URL('../..', import.meta.url))
const NIX_DIR = join(REPO, 'nix')
const ROLES = join(REPO, 'test', 'nix', 'fixtures', 'roles')
// Next to the repository first; the team's machines also keep it at /work/shared.
const TARBALL_CANDIDATES = [resolve(REPO, '..', 'shared', 'nix', 'nixpkgs-24.05.tar.xz'), '/work/shared/nix/nixpkgs-24.05.tar.xz']
const TARBALL = process.env.FLEET_NIXPKGS_TARBALL || TARBALL_CANDIDATES.find((f) => existsSync(f)) || TARBALL_CANDIDATES[0]!
const CACHE = process.env.FLEET_CACHE_DIR || '/var/tmp/fleet-test-cache'
const TREE = join(CACHE, 'nixpkgs-24.05')
// Reused between runs: the nixpkgs tree is copied into it once.
const STORE_ROOT = join(CACHE, 'nix-root')
const EVAL_TIMEOUT = 10 * 60_000

interface Result {
  ok: boolean
  stdout: string
  stderr: string
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Result> {
  return new Promise((done) => {
    execFile(cmd, args, { env, encoding: 'utf8', timeout: EVAL_TIMEOUT, maxBuffer: 64 * 1024 ** 2 }, (err, stdout, stderr) => {
      done({ ok: !err, stdout, stderr: stderr || (err ? err.message : '') })
    })
  })
}

const NIX_ENV = {
  ...process.env,
  NIX_CONFIG: 'experimental-features = nix-command flakes',
  // Debian's Nix 2.8 crashes in its garbage collector while evaluating NixOS.
  GC_DONT_GC: '1',
  XDG_CACHE_HOME: join(CACHE, 'xdg-cache'),
}

// The tree as a flake input, locked by its hash: a plain path: input is copied into the
// store by every `nix eval` (150 MB, minutes on a busy disk); a locked one whose store path
// is already valid is used as it is.
let treeInput = `path:${TREE}`

/** `nix eval --json FLAKE#ATTR --apply APPLY` against the 24.05 tree; `nixpkgsInput` names the input to override. */
function nixEval(flake: string, attr: string, apply: string, nixpkgsInput = 'nixpkgs'): Promise<Result> {
  return run('nix', [
    '--store', `local?root=${STORE_ROOT}`,
    'eval', '--json', `path:${flake}#${attr}`, '--apply', apply,
    '--override-input', nixpkgsInput, treeInput, '--no-write-lock-file',
  ], NIX_ENV)
}

async function lockTree(): Promise<void> {
  const r = await run('nix', ['hash', 'path', TREE], NIX_ENV)
  if (!r.ok || !/^sha256-/.test(r.stdout.trim())) throw new Error(`nix hash path ${TREE}: ${r.stderr}`)
  treeInput = `path:${TREE}?lastModified=0&narHash=${encodeURIComponent(r.stdout.trim())}`
}

/** Unpacks the tarball into TREE unless it is there: into a temporary folder, then renamed (atomic). */
async function ensureTree(): Promise<void> {
  if (existsSync(join(TREE, '.version'))) return
  await mkdir(CACHE, { recursive: true })
  const tmp = await mkdtemp(join(CACHE, 'unpack-'))
  try {
    const r = await run('tar', ['-xJf', TARBALL, '-C', tmp])
    if (!r.ok) throw new Error(`tar -xJf ${TARBALL}: ${r.stderr}`)
    await rename(join(tmp, 'nixpkgs-24.05'), TREE).catch((e: NodeJS.ErrnoException) => {
      // Another run unpacked it meanwhile: use theirs.
      if (!existsSync(join(TREE, '.version'))) throw e
    })
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

/** Why this test cannot run here, or undefined. Under CI a reason is a failure, not a skip. */
async function missing(): Promise<string | undefined> {
  if (!(await run('nix', ['--version'])).ok) return 'nix is not installed (scripts/setup-host.sh installs nix-bin)'
  if (!existsSync(TARBALL)) return `no nixpkgs tarball at ${process.env.FLEET_NIXPKGS_TARBALL || TARBALL_CANDIDATES.join(' or ')} (set FLEET_NIXPKGS_TARBALL)`
  return undefined
}

let why: string | undefined
function requireNix(skip: () => void): void {
  if (!why) return
  if (process.env.CI) throw new Error(`cannot evaluate the flake: ${why}`)
  console.log(`skipped: ${why}`)
  skip()
}

const DRV = /^\/nix\/store\/[0-9a-z]{32}-[^/]+\.drv$/

// Everything one `nix eval` returns: per flake, each configuration's toplevel and image
// drvPaths (and what it says it is), and each package's drvPath.
const APPLY = `t:
  let
    conf = c: {
      toplevel = c.config.system.build.toplevel.drvPath;
      image = c.config.system.build.fleetImage.drvPath;
      name = c.config.fleet.image.name;
      system = c.pkgs.stdenv.hostPlatform.system;
      release = c.lib.trivial.release;
      rootLabel = c.config.fileSystems."/".device;
      partitions = builtins.mapAttrs (n: p: p.repartConfig) c.config.image.repart.partitions;
      espFiles = builtins.attrNames c.config.image.repart.partitions."10-esp".contents;
      loaderEntry = c.config.image.repart.partitions."10-esp".contents."/loader/entries/nixos.conf".source.text;
      toplevelOut = c.config.system.build.toplevel.outPath;
      rootOptions = c.config.fileSystems."/".options;
      varOptions = c.config.fileSystems."/var".options;
      sshdKeygen = c.config.systemd.services ? sshd-keygen;
      hostKeys = c.config.services.openssh.hostKeys;
      sysusers = c.config.systemd.sysusers.enable;
      initrdServices = builtins.filter (n: builtins.substring 0 6 n == "fleet-") (builtins.attrNames c.config.boot.initrd.systemd.services);
      networkdRequires = c.config.systemd.services.systemd-networkd.requires;
    };
    outputs = f: {
      configs = builtins.mapAttrs (n: conf) f.nixosConfigurations;
      packages = builtins.mapAttrs (s: builtins.mapAttrs (n: p: p.drvPath)) f.packages;
    };
  in { shipped = outputs t.shipped; roles = outputs t.roles; }`

interface Conf {
  espFiles: string[]
  loaderEntry: string
  toplevelOut: string
  rootOptions: string[]
  varOptions: string[]
  sshdKeygen: boolean
  hostKeys: unknown[]
  sysusers: boolean
  initrdServices: string[]
  networkdRequires: string[]
  toplevel: string
  image: string
  name: string
  system: string
  release: string
  rootLabel: string
  partitions: Record<string, Record<string, string | number | boolean>>
}
interface Outputs {
  configs: Record<string, Conf>
  packages: Record<string, Record<string, string>>
}

describe('nix flake evaluated against NixOS 24.05', () => {
  let work: string
  beforeAll(async () => {
    why = await missing()
    if (!why) {
      await ensureTree()
      await lockTree()
    }
    await mkdir(CACHE, { recursive: true })
    work = await mkdtemp(join(CACHE, 'eval-'))
    return () => rm(work, { recursive: true, force: true })
  }, EVAL_TIMEOUT)

  it('evaluates every configuration and image of the shipped flake and of role images, x86_64 and aarch64', { timeout: EVAL_TIMEOUT }, async (ctx) => {
    requireNix(() => ctx.skip())
    // The layout `fleet init` makes (the shipped flake copied to nix/fleet/), with the
    // fixture's flake and role modules in place of the generated flake.
    const repo = join(work, 'repo')
    // init encrypts host keys to the admin's key: give it one of its own (never the runner's ~/.ssh).
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'admin')])
    await initRepo(repo, { dryRun: false, identity: join(work, 'admin'), log: () => {} })
    const generated = await readFile(join(repo, 'nix', 'flake.nix'), 'utf8')
    expect(generated).toContain('fleet.lib.mkFleetOutputs')
    expect(generated).toMatch(/images = \{/)
    await cp(ROLES, join(repo, 'nix'), { recursive: true })

    const t0 = performance.now()
    const r = await nixEval(join(repo, 'nix'), 'fleetTest', APPLY, 'fleet/nixpkgs')
    console.log(`nix eval (6 systems): ${Math.round((performance.now() - t0) / 1000)} s`)
    expect(r.ok, r.stderr).toBe(true)
    const out = JSON.parse(r.stdout) as { shipped: Outputs; roles: Outputs }

    const check = (o: Outputs, images: string[]) => {
      const names = images.flatMap((i) => [`${i}-aarch64`, `${i}-x86_64`]).sort()
      expect(Object.keys(o.configs).sort()).toEqual(names)
      for (const [name, c] of Object.entries(o.configs)) {
        const [image, cpu] = name.split('-') as [string, 'x86_64' | 'aarch64']
        expect(c.release).toBe('24.05')
        expect(c.system).toBe(`${cpu}-linux`)
        expect(c.name).toBe(image)
        expect(c.toplevel).toMatch(DRV)
        expect(c.toplevel).toMatch(/-nixos-system-.*\.drv$/)
        expect(c.image).toMatch(new RegExp(`-fleet-${image}-image-${cpu}-linux\\.drv$`))
        // The disk layout: ESP, then the root filesystem with the label fstab mounts.
        expect(c.partitions['10-esp']).toMatchObject({ Type: 'esp', Format: 'vfat', Label: 'ESP' })
        expect(c.partitions['20-root']).toMatchObject({ Type: 'root', Format: 'ext4', Label: 'nixos' })
        expect(c.rootLabel).toBe('/dev/disk/by-label/nixos')
        // systemd-boot at the removable-media path, and one entry that boots this very system.
        expect(c.espFiles).toContain(cpu === 'x86_64' ? '/EFI/BOOT/BOOTX64.EFI' : '/EFI/BOOT/BOOTAA64.EFI')
        expect(c.loaderEntry).toContain(`options init=${c.toplevelOut}/init `)
        expect(c.loaderEntry).toContain(cpu === 'x86_64' ? 'console=ttyS0,115200n8' : 'console=ttyAMA0,115200n8')
        expect(c.rootOptions).toContain('ro')
        expect(c.varOptions).toContain('x-systemd.device-timeout=30s')
        // 24.05 has no userborn: systemd-sysusers takes its place. No host key is generated.
        expect(c.sysusers).toBe(true)
        expect(c.sshdKeygen).toBe(false)
        expect(c.hostKeys).toEqual([])
        // The initrd binds the identity and turns fatal failures into FLEET-FATAL + power off.
        expect(c.initrdServices).toEqual(expect.arrayContaining(['fleet-fatal', 'fleet-identity']))
        expect(c.networkdRequires).toContain('nftables.service')
        // What `fleet build --channel <image> --arch <cpu>` builds is this configuration's image.
        const attr = installable('/x', cpu, image).split('#packages.')[1]!.split('.')
        expect(o.packages[attr[0]!]?.[attr[1]!], `packages.${attr.join('.')}`).toBe(c.image)
      }
    }
    check(out.shipped, ['base'])
    check(out.roles, ['db', 'web'])
    for (const s of ['x86_64-linux', 'aarch64-linux']) {
      expect(out.shipped.packages[s]!.default).toBe(out.shipped.packages[s]!['base-image'])
      // Role modules make different systems.
      const cpu = s.split('-')[0]
      expect(out.roles.configs[`web-${cpu}`]!.toplevel).not.toBe(out.roles.configs[`db-${cpu}`]!.toplevel)
      expect(out.roles.configs[`web-${cpu}`]!.toplevel).not.toBe(out.shipped.configs[`base-${cpu}`]!.toplevel)
    }
  })

  it('fails on a misspelt option (the evaluation above is not vacuous)', { timeout: EVAL_TIMEOUT }, async (ctx) => {
    requireNix(() => ctx.skip())
    const flake = join(work, 'bogus')
    await cp(NIX_DIR, flake, { recursive: true })
    await writeFile(join(flake, 'modules', 'bogus.nix'), '{ services.opensshh.enable = true; }\n')
    const defaultNix = join(flake, 'modules', 'default.nix')
    const text = readFileSync(defaultNix, 'utf8')
    expect(text).toContain('./base.nix')
    await writeFile(defaultNix, text.replace('./base.nix', './base.nix ./bogus.nix'))
    const r = await nixEval(flake, 'nixosConfigurations', 'cs: builtins.mapAttrs (n: c: c.config.system.build.toplevel.drvPath) cs')
    expect(r.ok).toBe(false)
    expect(r.stderr).toMatch(/option `services\.opensshh' does not exist/)
  })
})
