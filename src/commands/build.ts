import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../base-command.js'
import { channel, dryRun } from '../flags.js'
import { ARCHES, hostArch, type Arch } from '../machines/model.js'
import { checkChannel } from '../machines/validate.js'
import { BUILDERS, buildImage, type Builder, type BuildResult } from '../services/build.js'
import { UserError } from '../errors.js'
import { humanSize } from '../util/units.js'

export default class Build extends BaseCommand<typeof Build> {
  static override summary = 'Build the base image and point a channel at it (Nix flake, or Debian without Nix)'
  static override description = `Builders:

nix: nix build of packages.<arch>-linux.<channel>-image from the flake in the repository's nix/ (or the one fleet ships): the flake defines one image per channel (lib.mkFleetOutputs { images = { base = [ ]; web = [ ./web.nix ]; }; }). The default where nix is installed.

debian: Debian 12 from deb.debian.org with mmdebstrap, plus the guest contract; no Nix needed, but root. The bootstrap is cached in <state>/cache (FLEET_CACHE_DIR), so a rebuild only redoes the customisation and disk assembly; --refresh fetches fresh packages (security updates).

The image is checked (qemu-img check and info: qcow2, no backing file), stored read-only under its sha256 in <state>/images, and the channel for its architecture moves to it. VMs keep their image until \`fleet upgrade\`. Build output streams to stderr.`
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
    'dry-run': dryRun,
  }

  async run(): Promise<BuildResult> {
    const f = this.flags
    const bad = checkChannel(f.channel)
    if (bad) throw new UserError(bad)
    const arch = (f.arch ?? hostArch() ?? 'x86_64') as Arch
    const r = await buildImage(this.paths(), {
      builder: f.builder as Builder | undefined, arch, channel: f.channel, compress: Boolean(f.compress), refresh: Boolean(f.refresh),
      dryRun: Boolean(f['dry-run']), log: this.progress,
    })
    if (!this.jsonEnabled()) {
      if (r.dryRun) {
        this.log(`Would build a ${r.arch} image with ${r.builder} from ${r.source}${r.bootstrapCached === false ? ' (bootstrap not cached yet)' : ''} and point channel ${r.channel} at it`)
      } else {
        const steps = Object.entries(r.seconds).map(([k, s]) => `${k} ${s}s`).join(', ')
        this.log(`${r.channel} (${r.arch}) → ${r.digest}${r.alreadyStored ? ' (already in the store)' : ''}${r.previous && r.previous !== r.digest ? `, was ${r.previous.slice(0, 12)}` : ''}`)
        this.log(`  ${r.path}: ${humanSize(r.size ?? 0)} on disk, ${humanSize(r.virtualSize ?? 0)} virtual${r.compressed ? ', zstd' : ''}`)
        this.log(`  ${steps}`)
      }
    }
    return r
  }
}
