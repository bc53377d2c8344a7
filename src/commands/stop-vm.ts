import * as Flags from '@oclif/core/flags'
import { adopt, dryRun, timeout } from '../flags.js'
import type { BatchVm } from '../services/batch.js'
import { stopVm, type StateChange } from '../services/lifecycle.js'
import { VmBatchCommand } from '../vm-batch-command.js'

type Stopped = StateChange & { forced: boolean }

export default class StopVm extends VmBatchCommand<typeof StopVm> {
  static override summary = 'Shut VMs down (ACPI), waiting up to --timeout seconds; --force powers them off after that'
  static override description = 'With several names the VMs are asked to shut down one after another, each under its own lock; one that fails is reported and the others go on (exit 3).'
  static override examples = [
    '<%= config.bin %> stop-vm web1',
    '<%= config.bin %> stop-vm web1 web2 --timeout 120 --force',
  ]
  static override flags = { timeout, force: Flags.boolean({ description: 'Power off (virsh destroy) if still running after the timeout' }), 'dry-run': dryRun, adopt }

  async run(): Promise<Stopped | { vms: BatchVm[] }> {
    const ctx = this.context({ dryRun: this.flags['dry-run'] })
    const opts = { timeoutS: this.flags.timeout, force: this.flags.force, adopt: this.flags.adopt }
    return this.forEachVm((n) => stopVm(ctx, n, opts),
      (r) => `${r.name}: ${r.before} → ${r.after}${r.forced ? ' (forced off)' : ''}${r.dryRun ? ' (dry run)' : ''}`,
      (r) => (r.before === 'shut off' ? 'already stopped' : 'stopped'))
  }
}
