import { BaseCommand } from '../../base-command.js'
import { listImageRows, type ImageRow } from '../../services/image-list.js'
import { humanSize } from '../../util/units.js'

export default class ImageList extends BaseCommand<typeof ImageList> {
  static override summary = 'List stored base images: digest, size, channels pointing at them and VMs using them'
  static override examples = [
    '<%= config.bin %> image list',
    '<%= config.bin %> image list --json',
  ]

  async run(): Promise<{ images: ImageRow[] }> {
    const images = await listImageRows(this.paths())
    if (!this.jsonEnabled()) {
      if (!images.length) this.log('No images. Import one with `fleet image import FILE --channel base`.')
      for (const i of images) {
        this.log(`${i.digest.slice(0, 16)}  ${humanSize(i.size).padStart(10)}  channels: ${i.channels.join(', ') || '-'}  vms: ${i.vms.join(', ') || '-'}`)
      }
    }
    return { images }
  }
}
