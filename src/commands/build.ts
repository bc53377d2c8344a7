import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../base-command.js'
import { channel, dryRun, virtType } from '../flags.js'
import { ARCHES, hostArch, type Arch } from '../machines/model.js'
import { checkChannel } from '../machines/validate.js'
import { BUILDERS, buildImage, type Builder, type BuildResult } from '../services/build.js'
import { VERIFY_TIMEOUT_S } from '../services/verify-image.js'
import { UserError } from '../errors.js'
import { humanSize } from '../util/units.js'

export default class Build extends BaseCommand<typeof Build> {
  static override summary = 'Build the base image and point a channel at it (Nix flake, or Debian without Nix)'
  static override description = `Builders:

nix: nix build of packages.<arch>-linux.<channel>-image from the flake in the repository's nix/ (or the one fleet ships): the flake defines one image per channel (lib.mkFleetOutputs { images = { base = [ ]; web = [ ./web.nix ]; }; }). The default where nix is installed.

debian: Debian 12 from deb.debian.org with mmdebstrap, plus the guest contract; no Nix needed, but root. The bootstrap is cached in <state>/cache (FLEET_CACHE_DIR), so a rebuild only redoes the customisation and disk assembly; --refresh fetches fresh packages (security updates).

The image is checked (qemu-img check and info: qcow2, no backing file), then booted in a throwaway domain with a throwaway identity (under the host's domain type): the channel moves only if the guest prints a self-check line showing it honours the guest contract (docs/guest-contract.md). A failed verification leaves the channel where it was, stores nothing and keeps the guest's console log in <state>/verify-logs/. --no-verify skips the boot.

The image is stored read-only under its sha256 in <state>/images, and the channel for its architecture moves to it. VMs keep their image until \`fleet upgrade\`. Build output streams to stderr; each phase is timed (build → assemble → convert → verify → store).`
  static override examples = [
    '<%= config.bin %> build',
    '<%= config.bin %> build --builder debian --compress',
    '<%= config.bin %> build --arch aarch64 --channel base',
    '<%= config.bin %> build --builder debian --refresh',
  ]
  static override flags = {
    builder: Flags.string({ description: 'How to build (default: nix if installed, else debian)', options: [...BUILDERS] }),
    arch: Flags.string({ description: 'Guest architecture (default: this host\'s)', options: [...ARCHES] }),
    channel: channel('Channel to point at the new image'),
    compress: Flags.boolean({ description: 'Recompress the qcow2 with zstd (smaller, slightly slower first reads)' }),
    refresh: Flags.boolean({ description: 'Debian: bootstrap again instead of reusing the cached tree' }),
    verify: Flags.boolean({ description: 'Boot the image in a throwaway domain and move the channel only if it proves the guest contract (--no-verify: skip)', default: true, allowNo: true }),
    'verify-timeout': Flags.integer({ description: 'Seconds the guest has to print its self-check line', default: VERIFY_TIMEOUT_S, min: 10 }),
    'virt-type': virtType,
    'dry-run': dryRun,
  }

  async run(): Promise<BuildResult> {
    const f = this.flags
    const bad = checkChannel(f.channel)
    if (bad) throw new UserError(bad)
    const arch = (f.arch ?? hostArch() ?? 'x86_64') as Arch
    const r = await buildImage(this.context({ virtType: f['virt-type'], dryRun: f['dry-run'] }), {
      builder: f.builder as Builder | undefined, arch, channel: f.channel, compress: Boolean(f.compress), refresh: Boolean(f.refresh),
      verify: f.verify, verifyTimeoutS: f['verify-timeout'], dryRun: Boolean(f['dry-run']), log: this.progress,
    })
    if (!this.jsonEnabled()) {
      if (r.dryRun) {
        this.log(`Would build a ${r.arch} image with ${r.builder} from ${r.source}${r.bootstrapCached === false ? ' (bootstrap not cached yet)' : ''}${f.verify ? ', boot it to verify the guest contract' : ''} and point channel ${r.channel} at it`)
      } else {
        const steps = Object.entries(r.seconds).filter(([k]) => k !== 'total').map(([k, s]) => `${k} ${s}s`).join(' → ') + `, total ${r.seconds.total}s`
        this.log(`${r.channel} (${r.arch}) → ${r.digest}${r.alreadyStored ? ' (already in the store)' : ''}${r.previous && r.previous !== r.digest ? `, was ${r.previous.slice(0, 12)}` : ''}`)
        this.log(`  ${r.path}: ${humanSize(r.size ?? 0)} on disk, ${humanSize(r.virtualSize ?? 0)} virtual${r.compressed ? ', zstd' : ''}`)
        this.log(r.verify ? `  verified in ${r.verify.domain} (${r.verify.virtType}): ${r.verify.line}` : '  not verified (--no-verify)')
        this.log(`  ${steps}`)
      }
    }
    return r
  }
}
