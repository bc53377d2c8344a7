import { Args } from '@oclif/core'
import { BaseCommand } from '../../base-command.js'
import { UserError } from '../../errors.js'
import { dryRun, identity } from '../../flags.js'
import { readKeyArgs } from '../../services/keys.js'
import { removeAdmin, type SecretsResult } from '../../services/secrets.js'
import { renderSecrets } from '../../secrets/render.js'

export default class SecretsRemoveAdmin extends BaseCommand<typeof SecretsRemoveAdmin> {
  static override summary = 'Remove an admin from .fleet/recipients and re-encrypt every machine secret without them'
  static override description = 'KEY is the public key (or a .pub file) or the comment of its line. The last admin cannot be removed. The removed admin can still read the old versions in git history: after removing someone who should lose access, also give the machines new host keys.'
  static override examples = ['<%= config.bin %> secrets remove-admin ~/bob.pub', '<%= config.bin %> secrets remove-admin bob@laptop']
  static override args = { key: Args.string({ description: 'Public key (file or key line) or the comment of its line in .fleet/recipients', required: true }) }
  static override flags = { identity, 'dry-run': dryRun }

  async run(): Promise<SecretsResult> {
    const keys = await readKeyArgs([this.args.key])
    if (keys.length !== 1) throw new UserError(`${this.args.key} holds ${keys.length} keys; give exactly one`, 'Pass one public key line or a .pub file with one key.')
    const r = await removeAdmin(this.context({ dryRun: this.flags['dry-run'], identity: this.flags.identity }), keys[0]!)
    if (!this.jsonEnabled()) this.log(renderSecrets(r, 'Admin removed; machine secrets re-encrypted'))
    return r
  }
}
