import { adopt, dryRun } from '../flags.js'
import type { BatchVm } from '../services/batch.js'
import { startVmLocked, type StateChange } from '../services/lifecycle.js'
import { VmBatchCommand } from '../vm-batch-command.js'

export default class StartVm extends VmBatchCommand<typeof StartVm> {
  static override summary = 'Start defined VMs'
  static override description = 'With several names each VM is started on its own (its own lock); one that fails is reported and the others go on (exit 3).'
  static override examples = [
    '<%= config.bin %> start-vm web1',
    '<%= config.bin %> start-vm web1 web2 && fleet ssh web1 --wait 300',
  ]
  static override flags = { 'dry-run': dryRun, adopt }

  async run(): Promise<StateChange | { vms: BatchVm[] }> {
    const ctx = this.context({ dryRun: this.flags['dry-run'] })
    return this.forEachVm((n) => startVmLocked(ctx, n, { adopt: this.flags.adopt }),
      (r) => `${r.name}: ${r.before} → ${r.after}${r.dryRun ? ' (dry run)' : ''}`,
      (r) => (r.before === 'running' ? 'already running' : 'started'))
  }
}
