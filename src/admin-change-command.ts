// secrets add-admin and remove-admin: one public key in, the recipients list changed, every
// machine secret re-encrypted.
import * as Args from '@oclif/core/args'
import { BaseCommand } from './base-command.js'
import { UserError } from './errors.js'
import { dryRun, identity } from './flags.js'
import type { FleetContext } from './services/context.js'
import { readKeyArgs } from './services/keys.js'
import type { SecretsResult } from './services/secrets.js'
import { renderSecrets } from './secrets/render.js'

export abstract class AdminChangeCommand extends BaseCommand<typeof AdminChangeCommand> {
  static override args = { key: Args.string({ description: 'Public key', required: true }) }
  static override flags = { identity, 'dry-run': dryRun }
  /** The change to the recipients list, given the one key. */
  protected abstract change: (ctx: FleetContext, key: string) => Promise<SecretsResult>
  /** The line after it, without --json. */
  protected abstract done: string

  async run(): Promise<SecretsResult> {
    const keys = await readKeyArgs([this.args.key])
    if (keys.length !== 1) throw new UserError(`${this.args.key} holds ${keys.length} keys; give exactly one`, 'Pass one public key line or a .pub file with one key.')
    const r = await this.change(this.context({ dryRun: this.flags['dry-run'], identity: this.flags.identity }), keys[0]!)
    if (!this.jsonEnabled()) this.log(renderSecrets(r, this.done))
    return r
  }
}
