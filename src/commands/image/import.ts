import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../../base-command.js'
import { channel, dryRun } from '../../flags.js'
import { channelKey } from '../../store/images.js'
import { importImage, type ImportResult } from '../../store/import.js'
import { checkImageSource } from '../../store/qcow2-header.js'
import { ARCHES, type Arch } from '../../machines/model.js'
import { checkChannel } from '../../machines/validate.js'
import { UserError } from '../../errors.js'

export default class ImageImport extends BaseCommand<typeof ImageImport> {
  static override summary = 'Copy a qcow2 into the image store (content-addressed, read-only) and point a channel at it'
  static override description = 'The old image stays in the store; VMs keep using it until `fleet upgrade`.'
  static override examples = ['<%= config.bin %> image import nixos.qcow2 --channel base']
  static override args = { file: Args.string({ description: 'standalone qcow2 image: no backing file, external data file or encryption (raw: convert it first)', required: true }) }
  static override flags = {
    channel: channel('Channel to point at the image', 'name'),
    arch: Flags.string({ description: 'Guest architecture of the image; machines with this arch use it', options: [...ARCHES], default: 'x86_64' }),
    'dry-run': dryRun,
  }

  async run(): Promise<ImportResult> {
    const bad = checkChannel(this.flags.channel)
    if (bad) throw new UserError(bad, 'Name the channel with lowercase letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. --channel base).')
    // Refused before the copy: a fifo would block it, a folder or device is no image. The copy in
    // the store is what verifyBaseImage then checks.
    await checkImageSource(this.args.file)
    const r = await importImage({ paths: this.paths(), log: this.progress }, this.args.file, channelKey(this.flags.channel, this.flags.arch as Arch), { dryRun: this.flags['dry-run'] })
    if (!this.jsonEnabled()) {
      this.log(`${r.channel} → ${r.digest}${r.alreadyStored ? ' (already in the store)' : ''}${r.previous && r.previous !== r.digest ? ` (was ${r.previous.slice(0, 12)})` : ''}`)
    }
    return r
  }
}
