import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../base-command.js'
import { ExitCode } from '../errors.js'
import { dryRun, identity, timeout, virtType } from '../flags.js'
import { upgrade, type UpgradeResult } from '../services/upgrade.js'

export default class Upgrade extends BaseCommand<typeof Upgrade> {
  static override summary = "Move VMs to their channel's current base image and resync identity; /var is kept"
  static override description = `Each VM whose base image, identity files or XML differ from machines/NAME and its channel:
graceful shutdown if running; a new boot overlay on the channel's current image beside the old one;
/var/identity made to match machines/NAME exactly (all disks in one appliance launch, written beside
the old identity and swapped in); redefined (same UUID, MAC, NVRAM); overlays switched, the old one
kept for \`fleet rollback\`; restarted if it ran. /var is never recreated.
All or nothing per VM: a VM that does not stop (without --force) or fails stays on its old overlay
and definition, running if it ran, and the others go on; the exit status is then 3. A VM already
in sync is reported unchanged and keeps its rollback point. A killed upgrade is finished by the
next fleet command that touches the VM (or \`fleet repair\`).`
  static override strict = false
  static override args = { names: Args.string({ description: 'Machine names' }) }
  static override examples = ['<%= config.bin %> upgrade web1', '<%= config.bin %> upgrade --all --dry-run']
  static override flags = {
    all: Flags.boolean({ description: 'Every machine in machines/' }),
    force: Flags.boolean({ description: 'Power off VMs that do not shut down within --timeout' }),
    timeout,
    'virt-type': virtType,
    adopt: Flags.boolean({ description: 'Upgrade a VM even if the libvirt domain of its name is not this fleet\'s (defined by hand or by another fleet); it becomes this fleet\'s' }),
    identity,
    'dry-run': dryRun,
  }

  async run(): Promise<UpgradeResult> {
    const { argv } = await this.parse(Upgrade)
    const ctx = this.context({ virtType: this.flags['virt-type'], dryRun: this.flags['dry-run'], adopt: this.flags.adopt, identity: this.flags.identity })
    const r = await upgrade(ctx, argv as string[], { all: this.flags.all, timeoutS: this.flags.timeout, force: this.flags.force })
    if (!this.jsonEnabled()) {
      for (const v of r.vms) {
        const id = v.identity
        const what = `base ${v.baseFrom.slice(0, 12)} → ${v.baseTo.slice(0, 12)}; identity +[${id.added.join(' ')}] ~[${id.changed.join(' ')}] -[${id.removed.join(' ')}]`
        this.log(`${v.name}: ${v.outcome}${v.outcome === 'unchanged' ? '' : ` (${what})`}${v.restarted ? '; restarted' : ''}${v.error ? `\n    why: ${v.error}\n    now: ${v.state}` : ''}`)
        if (r.dryRun && v.xmlDiff.length) this.log(v.xmlDiff.map((l) => `    ${l}`).join('\n'))
      }
    }
    const failed = r.vms.filter((v) => v.outcome === 'failed')
    if (failed.length) {
      // The result (every VM's outcome) is still printed; the status says not all went well.
      this.progress(`${failed.length} of ${r.vms.length} VM(s) failed: ${failed.map((v) => v.name).join(', ')}`)
      process.exitCode = ExitCode.tool
    }
    return r
  }
}
