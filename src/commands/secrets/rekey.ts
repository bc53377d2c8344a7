import { BaseCommand } from '../../base-command.js'
import { dryRun, identity } from '../../flags.js'
import { rekey, type SecretsResult } from '../../services/secrets.js'
import { renderSecrets } from '../../secrets/render.js'

export default class SecretsRekey extends BaseCommand<typeof SecretsRekey> {
  static override summary = 'Re-encrypt every machine secret (machines/*/*.age) to the keys in .fleet/recipients'
  static override description = 'Run it after editing .fleet/recipients by hand. Every file is decrypted first (with your identity); if one cannot be, nothing is written. Each .age is then replaced atomically.'
  static override examples = ['<%= config.bin %> secrets rekey']
  static override flags = { identity, 'dry-run': dryRun }

  async run(): Promise<SecretsResult> {
    const r = await rekey(this.context({ dryRun: this.flags['dry-run'], identity: this.flags.identity }))
    if (!this.jsonEnabled()) this.log(renderSecrets(r, 'Re-encrypted the machine secrets'))
    return r
  }
}
