import * as Args from '@oclif/core/args'
import { AdminChangeCommand } from '../../admin-change-command.js'
import { addAdmin } from '../../services/secrets.js'

export default class SecretsAddAdmin extends AdminChangeCommand {
  static override summary = 'Add an admin (age or SSH public key) to .fleet/recipients and re-encrypt every machine secret to include them'
  static override description = 'You must be able to decrypt the secrets now (your key is on the list). Every file is decrypted before anything is written; then the list, then each .age atomically. Commit and push: the new admin decrypts from their clone.'
  static override examples = ['<%= config.bin %> secrets add-admin ~/bob.pub', '<%= config.bin %> secrets add-admin "ssh-ed25519 AAAAC3Nza… bob@laptop"', '<%= config.bin %> secrets add-admin age1…']
  static override args = { key: Args.string({ description: 'Public key: a .pub file, an SSH public key line, or an age recipient (age1…)', required: true }) }
  protected change = addAdmin
  protected done = 'Admin added; machine secrets re-encrypted'
}
