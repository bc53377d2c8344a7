import { vmName } from '../name.js'
import { BaseCommand } from '../base-command.js'
import { adopt, dryRun, nameArg, virtType } from '../flags.js'
import { defineVm, type DefineResult } from '../services/lifecycle.js'

export default class DefineVm extends BaseCommand<typeof DefineVm> {
  static override summary = 'Regenerate libvirt/NAME.xml from machines/NAME and (re)define the domain; disks untouched'
  static override examples = [
    '<%= config.bin %> define-vm web1',
    '<%= config.bin %> define-vm web1 --dry-run',
    '<%= config.bin %> define-vm web1 --adopt',
  ]
  static override args = { name: nameArg }
  static override flags = { 'virt-type': virtType, 'dry-run': dryRun, adopt }

  async run(): Promise<DefineResult> {
    const r = await defineVm(await this.context({ virtType: this.flags['virt-type'], dryRun: this.flags['dry-run'] }), vmName(this.args.name), { adopt: this.flags.adopt })
    if (!this.jsonEnabled()) this.log(`${r.defined ? 'Defined' : 'Would define'} ${r.name} from ${r.xml}${r.xmlChanged ? ' (XML changed)' : ''}`)
    return r
  }
}
