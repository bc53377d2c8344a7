import * as Args from '@oclif/core/args'
import { vmName, vmNames } from '../name.js'
import { BaseCommand } from '../base-command.js'
import { adopt, dryRun } from '../flags.js'
import { anyFailed, batchExitCode, batchVms, eachVm, type BatchVm } from '../services/batch.js'
import { startVmLocked, type StateChange } from '../services/lifecycle.js'

export default class StartVm extends BaseCommand<typeof StartVm> {
  static override summary = 'Start defined VMs'
  static override description = 'With several names each VM is started on its own (its own lock); one that fails is reported and the others go on (exit 3).'
  static override examples = [
    '<%= config.bin %> start-vm web1',
    '<%= config.bin %> start-vm web1 web2 && fleet ssh web1 --wait 300',
  ]
  static override strict = false
  static override args = { name: Args.string({ description: 'Machine names (folders in machines/)', required: true }) }
  static override flags = { 'dry-run': dryRun, adopt }

  async run(): Promise<StateChange | { vms: BatchVm[] }> {
    const { argv } = await this.parse(StartVm)
    const ctx = this.context({ dryRun: this.flags['dry-run'] })
    const opts = { adopt: this.flags.adopt }
    const line = (r: StateChange) => `${r.name}: ${r.before} → ${r.after}${r.dryRun ? ' (dry run)' : ''}`
    if (argv.length === 1) {
      const r = await startVmLocked(ctx, vmName(this.args.name), opts)
      if (!this.jsonEnabled()) this.log(line(r))
      return r
    }
    const out = await eachVm(vmNames(argv as string[]), (n) => startVmLocked(ctx, n, opts), this.progress)
    if (!this.jsonEnabled()) for (const o of out) this.log(o.result ? line(o.result) : `${o.name}: FAILED: ${o.error}`)
    if (anyFailed(out)) process.exitCode = batchExitCode(out)
    return { vms: batchVms(out, (r) => (r.before === 'running' ? 'already running' : 'started')) }
  }
}
