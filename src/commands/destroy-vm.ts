import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { vmName, vmNames } from '../name.js'
import { BaseCommand } from '../base-command.js'
import { UserError } from '../errors.js'
import { adopt, dryRun, timeout } from '../flags.js'
import { anyFailed, batchExitCode, batchVms, eachVm, type BatchVm } from '../services/batch.js'
import { destroyVm, type DestroyResult } from '../services/lifecycle.js'

export default class DestroyVm extends BaseCommand<typeof DestroyVm> {
  static override summary = 'Stop VMs, undefine them (with NVRAM) and delete their boot overlays; /var is kept unless --delete-data'
  static override description = `machines/NAME stays, and so does the /var disk unless --delete-data: \`fleet create-vm NAME\` brings the VM back on it, with its data and its identity resynced.
With several names each VM is destroyed on its own (its own lock); --delete-data asks once for all of them. One that fails is reported and the others go on (exit 3).`
  static override examples = [
    '<%= config.bin %> destroy-vm web1',
    '<%= config.bin %> destroy-vm web1 web2 --timeout 120',
    '<%= config.bin %> destroy-vm web1 --delete-data --yes',
  ]
  static override strict = false
  static override args = { name: Args.string({ description: 'Machine names (folders in machines/)', required: true }) }
  static override flags = {
    'delete-data': Flags.boolean({ description: 'Also delete the /var disk and console log (asks, unless --yes)' }),
    yes: Flags.boolean({ char: 'y', description: 'Do not ask before deleting data' }),
    timeout,
    'dry-run': dryRun,
    adopt,
  }

  async run(): Promise<DestroyResult | { vms: BatchVm[] }> {
    const { argv } = await this.parse(DestroyVm)
    // Every name is checked before anything is asked or removed.
    const names = argv.length === 1 ? [vmName(this.args.name)] : vmNames(argv as string[])
    const who = names.join(', ')
    if (this.flags['delete-data'] && !this.flags.yes && !this.flags['dry-run']) {
      if (!process.stdin.isTTY) throw new UserError(`machine ${who}: --delete-data deletes the /var disk; pass --yes to confirm without a terminal`)
      const { confirm } = await import('@inquirer/prompts') // loaded only to ask
      if (!(await confirm({ message: `Delete the /var disk of ${who} for good?`, default: false }))) throw new UserError(`machine ${who}: not destroyed (data deletion not confirmed)`)
    }
    const ctx = this.context({ dryRun: this.flags['dry-run'] })
    const opts = { deleteData: this.flags['delete-data'], timeoutS: this.flags.timeout, adopt: this.flags.adopt }
    const show = (r: DestroyResult) => {
      if (this.jsonEnabled()) return
      if (names.length > 1) this.log(`${r.name}:`)
      this.log(`${r.dryRun ? 'Would remove' : 'Removed'}:${r.removed.map((x) => `\n  ${x}`).join('') || ' nothing'}`)
      if (r.kept.length) this.log(`Kept:${r.kept.map((x) => `\n  ${x}`).join('')}`)
    }
    if (names.length === 1) {
      const r = await destroyVm(ctx, names[0]!, opts)
      show(r)
      return r
    }
    const out = await eachVm(names, (n) => destroyVm(ctx, n, opts), this.progress)
    for (const o of out) if (o.result) show(o.result)
    else if (!this.jsonEnabled()) this.log(`${o.name}: FAILED: ${o.error}`)
    if (anyFailed(out)) process.exitCode = batchExitCode(out)
    return { vms: batchVms(out, (r) => (r.dryRun ? 'would destroy' : 'destroyed')) }
  }
}
