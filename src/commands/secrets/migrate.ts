import { BaseCommand } from '../../base-command.js'
import { dryRun, identity } from '../../flags.js'
import { migrate, type SecretsResult } from '../../services/secrets.js'
import { renderSecrets } from '../../secrets/render.js'

export default class SecretsMigrate extends BaseCommand<typeof SecretsMigrate> {
  static override summary = 'Encrypt the plaintext host keys of a repository made before fleet encrypted them'
  static override description = `Makes .fleet/recipients with your public key if it is missing (from --identity, FLEET_AGE_IDENTITY,
~/.config/fleet/identity.txt, ~/.ssh/id_ed25519 or ~/.ssh/id_rsa; a new age identity in ~/.config/fleet if you have none),
writes each machines/NAME/ssh_host_ed25519_key as ssh_host_ed25519_key.age, removes the plaintext, and replaces
the host key lines of .gitignore. Run again after an interruption, it finishes.`
  static override examples = ['<%= config.bin %> secrets migrate', '<%= config.bin %> secrets migrate --identity ~/.ssh/id_ed25519']
  static override flags = { identity, 'dry-run': dryRun }

  async run(): Promise<SecretsResult> {
    const r = await migrate(this.context({ dryRun: this.flags['dry-run'], identity: this.flags.identity }))
    if (!this.jsonEnabled()) this.log(renderSecrets(r, 'Machine secrets are encrypted'))
    return r
  }
}
