import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../../base-command.js'
import { channel, dryRun, virtType } from '../../flags.js'
import { channelKey } from '../../store/images.js'
import { importImage, type ImportResult } from '../../store/import.js'
import { checkImageSource } from '../../store/qcow2-header.js'
import { ARCHES, type Arch } from '../../machines/model.js'
import { checkChannel } from '../../machines/validate.js'
import { UserError } from '../../errors.js'
import { importVerified, type VerifiedImport } from '../../services/image-import.js'
import { VERIFY_TIMEOUT_S } from '../../services/verify-image.js'

export default class ImageImport extends BaseCommand<typeof ImageImport> {
  static override summary = 'Copy a qcow2 into the image store (content-addressed, read-only) and point a channel at it'
  static override description = 'The old image stays in the store; VMs keep using it until `fleet upgrade`.\n\n--verify boots the image first in a throwaway domain with a throwaway identity and moves the channel only if the guest prints a self-check line showing it honours the guest contract (docs/guest-contract.md); a failed verification stores nothing and keeps the console log in <state>/verify-logs/.'
  static override examples = ['<%= config.bin %> image import nixos.qcow2 --channel base', '<%= config.bin %> image import nixos.qcow2 --channel base --verify']
  static override args = { file: Args.string({ description: 'standalone qcow2 image: no backing file, external data file or encryption (raw: convert it first)', required: true }) }
  static override flags = {
    channel: channel('Channel to point at the image', 'name'),
    arch: Flags.string({ description: 'Guest architecture of the image; machines with this arch use it', options: [...ARCHES], default: 'x86_64' }),
    verify: Flags.boolean({ description: 'Boot the image in a throwaway domain first; move the channel only if it proves the guest contract' }),
    'verify-timeout': Flags.integer({ description: 'Seconds the guest has to print its self-check line (--verify)', default: VERIFY_TIMEOUT_S, min: 10 }),
    'virt-type': virtType,
    'dry-run': dryRun,
  }

  async run(): Promise<ImportResult | VerifiedImport> {
    const bad = checkChannel(this.flags.channel)
    if (bad) throw new UserError(bad, 'Name the channel with lowercase letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. --channel base).')
    // Refused before the copy: a fifo would block it, a folder or device is no image. The copy in
    // the store is what verifyBaseImage then checks.
    await checkImageSource(this.args.file)
    const key = channelKey(this.flags.channel, this.flags.arch as Arch)
    const r = this.flags.verify && !this.flags['dry-run']
      ? await importVerified(this.context({ virtType: this.flags['virt-type'] }), this.args.file, key, { arch: this.flags.arch as Arch, timeoutS: this.flags['verify-timeout'] })
      : await importImage({ paths: this.paths(), log: this.progress }, this.args.file, key, { dryRun: this.flags['dry-run'] })
    if (!this.jsonEnabled()) {
      this.log(`${r.channel} → ${r.digest}${r.alreadyStored ? ' (already in the store)' : ''}${r.previous && r.previous !== r.digest ? ` (was ${r.previous.slice(0, 12)})` : ''}`)
      const v = (r as Partial<VerifiedImport>).verify
      if (v) this.log(`  verified in ${v.domain} (${v.virtType}, ${v.seconds} s): ${v.line}`)
    }
    return r
  }
}
