import { BaseCommand } from '../base-command.js'
import { dryRun } from '../flags.js'
import { gc, type GcResult } from '../services/gc.js'
import { humanSize } from '../util/units.js'

export default class Gc extends BaseCommand<typeof Gc> {
  static override summary = "Delete base images that no channel points at and no VM's backing chain uses"
  static override examples = [
    '<%= config.bin %> gc --dry-run',
    '<%= config.bin %> gc',
  ]
  static override flags = { 'dry-run': dryRun }

  async run(): Promise<GcResult> {
    const r = await gc({ paths: this.paths(), log: this.progress }, this.flags['dry-run'])
    if (!this.jsonEnabled()) {
      for (const d of r.deleted) this.log(`${r.dryRun ? 'would delete' : 'deleted'}  ${d.digest.slice(0, 16)}  ${humanSize(d.size)}`)
      for (const k of r.kept) this.log(`kept          ${k.digest.slice(0, 16)}  ${k.reason}`)
      for (const h of r.hosts) {
        for (const d of h.deleted) this.log(`${r.dryRun ? 'would delete' : 'deleted'}  ${d.slice(0, 16)}  on ${h.host}`)
        if (h.error) this.log(`not collected on ${h.host}: ${h.error}`)
      }
    }
    return r
  }
}
