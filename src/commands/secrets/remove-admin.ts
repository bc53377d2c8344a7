import * as Args from '@oclif/core/args'
import { AdminChangeCommand } from '../../admin-change-command.js'
import { removeAdmin } from '../../services/secrets.js'

export default class SecretsRemoveAdmin extends AdminChangeCommand {
  static override summary = 'Remove an admin from .fleet/recipients and re-encrypt every machine secret without them'
  static override description = 'KEY is the public key (or a .pub file) or the comment of its line. The last admin cannot be removed. The removed admin can still read the old versions in git history: after removing someone who should lose access, also give the machines new host keys.'
  static override examples = ['<%= config.bin %> secrets remove-admin ~/bob.pub', '<%= config.bin %> secrets remove-admin bob@laptop']
  static override args = { key: Args.string({ description: 'Public key (file or key line) or the comment of its line in .fleet/recipients', required: true }) }
  protected change = removeAdmin
  protected done = 'Admin removed; machine secrets re-encrypted'
}
