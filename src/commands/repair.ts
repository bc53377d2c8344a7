import { BaseCommand } from '../base-command.js'
import { dryRun } from '../flags.js'
import { repair, type RepairResult } from '../ops/repair.js'

export default class Repair extends BaseCommand<typeof Repair> {
  static override summary = 'Finish or roll back operations a killed fleet left behind, and remove crash leftovers'
  static override description = `Every fleet command does this for the VMs it touches before anything else; repair does it for
all of them: an interrupted create-vm is rolled back, an upgrade is rolled back if it stopped before
the identity resync and finished if it stopped after, a rollback is finished, an interrupted import
or gc in the image store is rolled back, and scratch folders (which may hold copies of private host
keys) and half-written files are removed. /var disks are never deleted.`
  static override examples = ['<%= config.bin %> repair --dry-run', '<%= config.bin %> repair']
  static override flags = { 'dry-run': dryRun }

  async run(): Promise<RepairResult> {
    const r = await repair(this.context({ dryRun: this.flags['dry-run'] }))
    if (!this.jsonEnabled()) {
      if (!r.items.length) this.log('Nothing to repair: no interrupted operation, no leftovers.')
      for (const i of r.items) this.log(`${i.target}${i.op ? `: interrupted ${i.op} at ${i.phase}` : ''}${i.actions.map((a) => `\n  ${a}`).join('')}`)
    }
    return r
  }
}
