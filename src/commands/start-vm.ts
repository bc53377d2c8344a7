import { vmName } from '../name.js'
import { BaseCommand } from '../base-command.js'
import { adopt, dryRun, nameArg } from '../flags.js'
import { startVmLocked, type StateChange } from '../services/lifecycle.js'

export default class StartVm extends BaseCommand<typeof StartVm> {
  static override summary = 'Start a defined VM'
  static override examples = [
    '<%= config.bin %> start-vm web1',
    '<%= config.bin %> start-vm web1 && fleet ssh web1 --wait 300',
  ]
  static override args = { name: nameArg }
  static override flags = { 'dry-run': dryRun, adopt }

  async run(): Promise<StateChange> {
    const r = await startVmLocked(await this.context({ dryRun: this.flags['dry-run'] }), vmName(this.args.name), { adopt: this.flags.adopt })
    if (!this.jsonEnabled()) this.log(`${r.name}: ${r.before} → ${r.after}${r.dryRun ? ' (dry run)' : ''}`)
    return r
  }
}
