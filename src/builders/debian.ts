// The Debian base image: mmdebstrap root (cached between builds) + fleet's guest-contract files
// + a chroot step that adds accounts and rebuilds the initramfs, assembled into a GPT disk
// (EFI partition with systemd-boot, read-only ext4 root) without loop devices or mounts.
import { lineSplitter, task, type Log } from '../util/progress.js'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as disk from '../adapters/disk-tools.js'
import { run } from '../adapters/exec.js'
import { bootstrap, type BootstrapSpec } from '../adapters/mmdebstrap.js'
import { UserError } from '../errors.js'
import { hostArch, type Arch } from '../machines/model.js'
import { packageRoot } from '../util/package-root.js'
import { timed } from '../util/timing.js'

export const DEBIAN_SUITE = 'bookworm'
export const DEBIAN_MIRROR = 'http://deb.debian.org/debian'

interface ArchFacts {
  debian: string
  kernel: string
  efi: string
  console: string
  /** Discoverable-partitions root type for this architecture. */
  rootType: string
}
const ARCH: Record<Arch, ArchFacts> = {
  x86_64: { debian: 'amd64', kernel: 'linux-image-cloud-amd64', efi: 'x64', console: 'ttyS0', rootType: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709' },
  aarch64: { debian: 'arm64', kernel: 'linux-image-cloud-arm64', efi: 'aa64', console: 'ttyAMA0', rootType: 'B921B045-1DF0-41C3-AF44-4C6F280D3FAE' },
}
const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'
export const ROOT_LABEL = 'root'

/** What the guest contract needs on top of Debian's minimal base. */
export function debianPackages(arch: Arch): string[] {
  return [
    'systemd-sysv', 'udev', 'dbus', ARCH[arch].kernel, 'initramfs-tools', 'e2fsprogs',
    'openssh-server', 'qemu-guest-agent', 'nftables', 'sudo', 'iproute2', 'systemd-boot-efi',
  ]
}

/** The files fleet lays over the bootstrap (package root/images/debian/rootfs). */
export function overlayDir(): string {
  return join(packageRoot(), 'images', 'debian', 'rootfs')
}

/** The identity steps every fleet image shares; the initramfs hook copies it in from /usr/lib/fleet. */
export function identityStepsFile(): string {
  return join(packageRoot(), 'nix', 'modules', 'identity-disk.sh')
}

export interface DebianBuildOptions {
  arch: Arch
  /** Where bootstrap tarballs are kept between builds. */
  cacheDir: string
  /** Scratch folder for this build (removed by the caller). */
  workDir: string
  /** Bootstrap again even if a cached tree exists (e.g. for security updates). */
  refresh: boolean
  mirror?: string
  log: Log
}

export interface DebianBuildResult {
  raw: string
  bootstrap: { tarball: string; cached: boolean; bytes: number; created: string }
  rootMiB: number
  seconds: Record<string, number>
}

export function bootstrapSpec(arch: Arch, mirror = DEBIAN_MIRROR): BootstrapSpec {
  return { suite: DEBIAN_SUITE, arch: ARCH[arch].debian, mirror, variant: 'minbase', packages: debianPackages(arch) }
}

/** Cached tarball for a spec: the name carries a hash of everything that shapes its content. */
export function bootstrapTarball(cacheDir: string, spec: BootstrapSpec): string {
  const key = createHash('sha256').update(JSON.stringify({ format: 1, ...spec })).digest('hex').slice(0, 16)
  return join(cacheDir, `debian-${spec.suite}-${spec.arch}-${key}.tar`)
}

/** Refuses early what cannot work: no root, or a foreign architecture without binfmt emulation. */
export function checkDebianBuildHost(arch: Arch, env = process.env): void {
  if (process.getuid?.() !== 0 && !env.SUDO) {
    throw new UserError('the Debian builder needs root: it runs mmdebstrap and chroot and keeps file owners inside the image',
      'Run fleet as root, or set SUDO=sudo so fleet prefixes the privileged steps.')
  }
  const host = hostArch()
  if (host !== arch && !existsSync(`/proc/sys/fs/binfmt_misc/qemu-${arch}`)) {
    throw new UserError(`building a Debian ${arch} image on this ${host ?? process.arch} host needs qemu-user binfmt emulation`,
      'apt-get install qemu-user-static binfmt-support, or build on an ' + arch + ' machine.')
  }
}

async function ensureBootstrap(o: DebianBuildOptions, spec: BootstrapSpec): Promise<DebianBuildResult['bootstrap']> {
  const tarball = bootstrapTarball(o.cacheDir, spec)
  const cached = existsSync(tarball) && !o.refresh
  if (!cached) {
    await mkdir(o.cacheDir, { recursive: true, mode: 0o755 })
    // Made inside the build folder, so an interrupted bootstrap is removed with it.
    const tmp = join(o.workDir, 'bootstrap.tar')
    await task(o.log, `bootstrap: Debian ${spec.suite} ${spec.arch} from ${spec.mirror} (${spec.packages.length} packages plus their dependencies)`,
      (t) => bootstrap(spec, tmp, lineSplitter(t.output)))
    await rename(tmp, tarball)
    // Older bootstraps of this suite and architecture are superseded.
    const prefix = `debian-${spec.suite}-${spec.arch}-`
    for (const f of await readdir(o.cacheDir)) {
      if (f.startsWith(prefix) && f.endsWith('.tar') && join(o.cacheDir, f) !== tarball) await rm(join(o.cacheDir, f), { force: true })
    }
  }
  const st = await stat(tarball)
  if (cached) o.log(`bootstrap: reusing ${tarball} from ${st.mtime.toISOString().slice(0, 16)} (--refresh bootstraps again)`)
  return { tarball, cached, bytes: st.size, created: st.mtime.toISOString() }
}

async function duMiB(dir: string): Promise<number> {
  const r = await run(['du'], ['-s', '-x', '--block-size=1M', dir], { privileged: true })
  return Number.parseInt(r.stdout, 10)
}

function newest(names: string[], prefix: string): string | undefined {
  return names.filter((n) => n.startsWith(prefix)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).pop()
}

/**
 * TEST ONLY: FLEET_TEST_BREAK_CONTRACT=identity builds an image without its identity step (the
 * initramfs fleet-identity script), so the e2e tests can prove that boot verification refuses a
 * Debian image that breaks the guest contract. Never set it for a real build.
 */
function testBreakContract(env = process.env): string[] {
  const v = env.FLEET_TEST_BREAK_CONTRACT
  if (!v) return []
  if (v !== 'identity') throw new UserError(`FLEET_TEST_BREAK_CONTRACT "${v}" must be identity (a test-only setting)`)
  return ['--test-break-contract', 'identity']
}

/** Builds the raw disk (after checkDebianBuildHost); the caller converts it to qcow2 and stores it. */
export async function buildDebianRaw(o: DebianBuildOptions): Promise<DebianBuildResult> {
  const facts = ARCH[o.arch]
  const spec = bootstrapSpec(o.arch, o.mirror)
  const seconds: Record<string, number> = {}

  const breakArgs = testBreakContract()
  const boot = await timed(seconds, 'bootstrap', () => ensureBootstrap(o, spec))

  const root = join(o.workDir, 'root')
  await mkdir(root, { mode: 0o755 })
  await timed(seconds, 'customize', () => task(o.log, 'customize: unpacking the bootstrap, adding the guest contract, rebuilding the initramfs', async (t) => {
    await run(['tar'], ['-x', '-f', boot.tarball, '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', root], { privileged: true })
    await run(['cp'], ['-r', '-T', '--preserve=mode', overlayDir(), root], { privileged: true })
    await run(['cp'], ['--preserve=mode', identityStepsFile(), join(root, 'usr/lib/fleet/identity-disk.sh')], { privileged: true })
    await run(['chroot'], [root, '/bin/sh', '/usr/lib/fleet/customize', ...breakArgs], { privileged: true, onStderr: lineSplitter(t.output) })
  }))

  const raw = join(o.workDir, 'disk.raw')
  const rootMiB = await timed(seconds, 'assemble', () => task(o.log, 'assemble: GPT disk with an EFI partition (systemd-boot) and a read-only ext4 root', async () => {
    const bootFiles = await readdir(join(root, 'boot'))
    const kernel = newest(bootFiles, 'vmlinuz-')
    const initrd = kernel && `initrd.img-${kernel.slice('vmlinuz-'.length)}`
    if (!kernel || !initrd || !bootFiles.includes(initrd)) throw new UserError(`the bootstrap has no kernel and initramfs in ${join(root, 'boot')}`)
    const sdboot = join(root, 'usr/lib/systemd/boot/efi', `systemd-boot${facts.efi}.efi`)
    if (!existsSync(sdboot)) throw new UserError(`the bootstrap has no ${sdboot} (package systemd-boot-efi)`)
    const loaderConf = join(o.workDir, 'loader.conf')
    const entry = join(o.workDir, 'fleet.conf')
    await writeFile(loaderConf, 'default fleet.conf\ntimeout 0\nconsole-mode keep\n')
    await writeFile(entry, [
      `title fleet base image (Debian ${DEBIAN_SUITE})`,
      'linux /vmlinuz',
      'initrd /initrd.img',
      `options root=LABEL=${ROOT_LABEL} ro console=${facts.console} rootwait`,
      '',
    ].join('\n'))
    const esp: Record<string, string> = {
      [`EFI/BOOT/BOOT${facts.efi.toUpperCase()}.EFI`]: sdboot,
      [`EFI/systemd/systemd-boot${facts.efi}.efi`]: sdboot,
      'loader/loader.conf': loaderConf,
      'loader/entries/fleet.conf': entry,
      vmlinuz: join(root, 'boot', kernel),
      'initrd.img': join(root, 'boot', initrd),
    }
    let espBytes = 0
    for (const f of Object.values(esp)) espBytes += (await stat(f)).size
    // Unused space costs nothing in qcow2; 260 MiB is the smallest comfortable FAT32.
    const espMiB = Math.max(260, Math.ceil((espBytes / disk.MiB) * 1.25) + 16)
    // The root is never written, so it only needs room for its files plus ext4's metadata.
    const used = await duMiB(root)
    const rootSize = Math.ceil(used * 1.15) + 64
    const espStart = 1
    const rootStart = espStart + espMiB
    const total = rootStart + rootSize + 1
    const fh = await open(raw, 'w')
    await fh.truncate(total * disk.MiB)
    await fh.close()
    await disk.writeGpt(raw, [
      { startMiB: espStart, sizeMiB: espMiB, type: ESP_TYPE, name: 'esp' },
      { startMiB: rootStart, sizeMiB: rootSize, type: facts.rootType, name: 'root' },
    ])
    await disk.mkfsFat(raw, espStart, espMiB, 'ESP')
    await disk.fatCopy(raw, espStart, esp)
    await disk.mkfsExt4At(raw, rootStart, rootSize, ROOT_LABEL, root, { journal: false })
    return rootSize
  }))
  return { raw, bootstrap: boot, rootMiB, seconds }
}
