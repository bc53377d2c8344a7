import * as Args from '@oclif/core/args'
import { BaseCommand } from '../base-command.js'
import { dryRun, identity } from '../flags.js'
import { initRepo, type InitResult } from '../services/init.js'

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Create a fleet repository: machines/, libvirt/, a nix/ flake, .fleet/recipients (your public key: host keys are committed encrypted to it) and a .gitignore'
  static override examples = ['<%= config.bin %> init ~/my-fleet']
  static override args = { dir: Args.string({ description: 'Folder to make a fleet repository', default: '.' }) }
  static override flags = { identity, 'dry-run': dryRun }

  async run(): Promise<InitResult> {
    const r = await initRepo(this.args.dir, { dryRun: this.flags['dry-run'], identity: this.flags.identity, log: this.progress })
    if (!this.jsonEnabled()) this.log(`${r.dryRun ? 'Would create' : 'Created'} fleet repository ${r.repo}\n${r.created.map((c) => `  ${c}`).join('\n')}${r.identity ? `\nHost keys are encrypted to ${r.recipients.join(', ')} (from ${r.identity}); add admins with \`fleet secrets add-admin KEY\`.` : ''}`)
    return r
  }
}
