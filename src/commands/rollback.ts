import * as Flags from '@oclif/core/flags'
import { vmName } from '../name.js'
import { BaseCommand } from '../base-command.js'
import { dryRun, nameArg, virtType } from '../flags.js'
import { rollback, type RollbackResult } from '../services/rollback.js'

export default class Rollback extends BaseCommand<typeof Rollback> {
  static override summary = 'Put a stopped VM back on its previous boot overlay and base image; /var untouched'
  static override examples = [
    '<%= config.bin %> rollback web1',
    '<%= config.bin %> rollback web1 --dry-run',
    '<%= config.bin %> rollback web1 --to 3f2a9c',
  ]
  static override args = { name: nameArg }
  static override flags = {
    to: Flags.string({ description: 'Go back to the newest kept rollback point on this image (a digest or a prefix of one; default: the previous overlay)' }),
    'virt-type': virtType,
    'dry-run': dryRun,
  }

  async run(): Promise<RollbackResult> {
    const r = await rollback(this.context({ virtType: this.flags['virt-type'], dryRun: this.flags['dry-run'] }), vmName(this.args.name), { to: this.flags.to })
    if (!this.jsonEnabled()) this.log(`${r.name}: base ${r.baseFrom.slice(0, 12)} → ${r.baseTo.slice(0, 12)}${r.dryRun ? ' (dry run)' : ''}`)
    return r
  }
}
