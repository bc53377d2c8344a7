import * as Flags from '@oclif/core/flags'
import { confirm } from '@inquirer/prompts'
import { vmName } from '../name.js'
import { BaseCommand } from '../base-command.js'
import { UserError } from '../errors.js'
import { adopt, dryRun, nameArg, timeout } from '../flags.js'
import { destroyVm, type DestroyResult } from '../services/lifecycle.js'

export default class DestroyVm extends BaseCommand<typeof DestroyVm> {
  static override summary = 'Stop a VM, undefine it (with NVRAM) and delete its boot overlay; /var is kept unless --delete-data'
  static override description = 'machines/NAME stays, and so does the /var disk unless --delete-data: `fleet create-vm NAME` brings the VM back on it, with its data and its identity resynced.'
  static override examples = [
    '<%= config.bin %> destroy-vm web1',
    '<%= config.bin %> destroy-vm web1 --timeout 120',
    '<%= config.bin %> destroy-vm web1 --delete-data --yes',
  ]
  static override args = { name: nameArg }
  static override flags = {
    'delete-data': Flags.boolean({ description: 'Also delete the /var disk and console log (asks, unless --yes)' }),
    yes: Flags.boolean({ char: 'y', description: 'Do not ask before deleting data' }),
    timeout,
    'dry-run': dryRun,
    adopt,
  }

  async run(): Promise<DestroyResult> {
    const name = vmName(this.args.name)
    if (this.flags['delete-data'] && !this.flags.yes && !this.flags['dry-run']) {
      if (!process.stdin.isTTY) throw new UserError(`machine ${name}: --delete-data deletes the /var disk; pass --yes to confirm without a terminal`)
      if (!(await confirm({ message: `Delete the /var disk of ${name} for good?`, default: false }))) throw new UserError(`machine ${name}: not destroyed (data deletion not confirmed)`)
    }
    const r = await destroyVm(this.context({ dryRun: this.flags['dry-run'] }), name, { deleteData: this.flags['delete-data'], timeoutS: this.flags.timeout, adopt: this.flags.adopt })
    if (!this.jsonEnabled()) {
      this.log(`${r.dryRun ? 'Would remove' : 'Removed'}:${r.removed.map((x) => `\n  ${x}`).join('') || ' nothing'}`)
      if (r.kept.length) this.log(`Kept:${r.kept.map((x) => `\n  ${x}`).join('')}`)
    }
    return r
  }
}
