import * as Flags from '@oclif/core/flags'
import { vmName } from '../name.js'
import { BaseCommand } from '../base-command.js'
import { adopt, dryRun, nameArg, timeout } from '../flags.js'
import { stopVm, type StateChange } from '../services/lifecycle.js'

export default class StopVm extends BaseCommand<typeof StopVm> {
  static override summary = 'Shut a VM down (ACPI), waiting up to --timeout seconds; --force powers it off after that'
  static override examples = [
    '<%= config.bin %> stop-vm web1',
    '<%= config.bin %> stop-vm web1 --timeout 120 --force',
  ]
  static override args = { name: nameArg }
  static override flags = { timeout, force: Flags.boolean({ description: 'Power off (virsh destroy) if still running after the timeout' }), 'dry-run': dryRun, adopt }

  async run(): Promise<StateChange & { forced: boolean }> {
    const r = await stopVm(await this.context({ dryRun: this.flags['dry-run'] }), vmName(this.args.name), { timeoutS: this.flags.timeout, force: this.flags.force, adopt: this.flags.adopt })
    if (!this.jsonEnabled()) this.log(`${r.name}: ${r.before} → ${r.after}${r.forced ? ' (forced off)' : ''}${r.dryRun ? ' (dry run)' : ''}`)
    return r
  }
}
