import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { vmName, vmNames } from '../name.js'
import { BaseCommand } from '../base-command.js'
import { adopt, dryRun, timeout } from '../flags.js'
import { anyFailed, batchExitCode, batchVms, eachVm, type BatchVm } from '../services/batch.js'
import { stopVm, type StateChange } from '../services/lifecycle.js'

type Stopped = StateChange & { forced: boolean }

export default class StopVm extends BaseCommand<typeof StopVm> {
  static override summary = 'Shut VMs down (ACPI), waiting up to --timeout seconds; --force powers them off after that'
  static override description = 'With several names the VMs are asked to shut down one after another, each under its own lock; one that fails is reported and the others go on (exit 3).'
  static override examples = [
    '<%= config.bin %> stop-vm web1',
    '<%= config.bin %> stop-vm web1 web2 --timeout 120 --force',
  ]
  static override strict = false
  static override args = { name: Args.string({ description: 'Machine names (folders in machines/)', required: true }) }
  static override flags = { timeout, force: Flags.boolean({ description: 'Power off (virsh destroy) if still running after the timeout' }), 'dry-run': dryRun, adopt }

  async run(): Promise<Stopped | { vms: BatchVm[] }> {
    const { argv } = await this.parse(StopVm)
    const ctx = this.context({ dryRun: this.flags['dry-run'] })
    const opts = { timeoutS: this.flags.timeout, force: this.flags.force, adopt: this.flags.adopt }
    const line = (r: Stopped) => `${r.name}: ${r.before} → ${r.after}${r.forced ? ' (forced off)' : ''}${r.dryRun ? ' (dry run)' : ''}`
    if (argv.length === 1) {
      const r = await stopVm(ctx, vmName(this.args.name), opts)
      if (!this.jsonEnabled()) this.log(line(r))
      return r
    }
    const out = await eachVm(vmNames(argv as string[]), (n) => stopVm(ctx, n, opts), this.progress)
    if (!this.jsonEnabled()) for (const o of out) this.log(o.result ? line(o.result) : `${o.name}: FAILED: ${o.error}`)
    if (anyFailed(out)) process.exitCode = batchExitCode(out)
    return { vms: batchVms(out, (r) => (r.before === 'shut off' ? 'already stopped' : 'stopped')) }
  }
}
