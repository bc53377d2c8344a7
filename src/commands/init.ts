import * as Args from '@oclif/core/args'
import { BaseCommand } from '../base-command.js'
import { dryRun } from '../flags.js'
import { initRepo, type InitResult } from '../services/init.js'

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Create a fleet repository: machines/, libvirt/, a nix/ flake and a .gitignore for host keys'
  static override examples = ['<%= config.bin %> init ~/my-fleet']
  static override args = { dir: Args.string({ description: 'Folder to make a fleet repository', default: '.' }) }
  static override flags = { 'dry-run': dryRun }

  async run(): Promise<InitResult> {
    const r = await initRepo(this.args.dir, this.flags['dry-run'])
    if (!this.jsonEnabled()) this.log(`${r.dryRun ? 'Would create' : 'Created'} fleet repository ${r.repo}\n${r.created.map((c) => `  ${c}`).join('\n')}`)
    return r
  }
}
