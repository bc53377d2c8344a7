import { Args } from '@oclif/core'
import { BaseCommand } from '../../base-command.js'
import { UserError } from '../../errors.js'
import { dryRun, identity } from '../../flags.js'
import { readKeyArgs } from '../../services/keys.js'
import { addAdmin, type SecretsResult } from '../../services/secrets.js'
import { renderSecrets } from '../../secrets/render.js'

export default class SecretsAddAdmin extends BaseCommand<typeof SecretsAddAdmin> {
  static override summary = 'Add an admin (age or SSH public key) to .fleet/recipients and re-encrypt every machine secret to include them'
  static override description = 'You must be able to decrypt the secrets now (your key is on the list). Every file is decrypted before anything is written; then the list, then each .age atomically. Commit and push: the new admin decrypts from their clone.'
  static override examples = ['<%= config.bin %> secrets add-admin ~/bob.pub', '<%= config.bin %> secrets add-admin "ssh-ed25519 AAAAC3Nza… bob@laptop"', '<%= config.bin %> secrets add-admin age1…']
  static override args = { key: Args.string({ description: 'Public key: a .pub file, an SSH public key line, or an age recipient (age1…)', required: true }) }
  static override flags = { identity, 'dry-run': dryRun }

  async run(): Promise<SecretsResult> {
    const keys = await readKeyArgs([this.args.key])
    if (keys.length !== 1) throw new UserError(`${this.args.key} holds ${keys.length} keys; give exactly one`, 'Pass one public key line or a .pub file with one key.')
    const r = await addAdmin(this.context({ dryRun: this.flags['dry-run'], identity: this.flags.identity }), keys[0]!)
    if (!this.jsonEnabled()) this.log(renderSecrets(r, 'Admin added; machine secrets re-encrypted'))
    return r
  }
}
