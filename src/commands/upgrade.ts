import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../base-command.js'
import { dryRun, timeout, virtType } from '../flags.js'
import { upgrade, type UpgradeResult } from '../services/upgrade.js'

export default class Upgrade extends BaseCommand<typeof Upgrade> {
  static override summary = "Move VMs to their channel's current base image and resync identity; /var is kept"
  static override description = `For each VM: graceful shutdown if running; /var/identity made to match machines/NAME exactly
(all disks in one guestfish launch); a new boot overlay on the current image, the old one kept
for \`fleet rollback\`; XML regenerated and redefined (same UUID, MAC, NVRAM); restarted if it ran.`
  static override strict = false
  static override args = { names: Args.string({ description: 'Machine names' }) }
  static override examples = ['<%= config.bin %> upgrade web1', '<%= config.bin %> upgrade --all --dry-run']
  static override flags = {
    all: Flags.boolean({ description: 'Every machine in machines/' }),
    force: Flags.boolean({ description: 'Power off VMs that do not shut down within --timeout' }),
    timeout,
    'virt-type': virtType,
    'dry-run': dryRun,
  }

  async run(): Promise<UpgradeResult> {
    const { argv } = await this.parse(Upgrade)
    const ctx = this.context({ virtType: this.flags['virt-type'], dryRun: this.flags['dry-run'] })
    const r = await upgrade(ctx, argv as string[], { all: this.flags.all, timeoutS: this.flags.timeout, force: this.flags.force })
    if (!this.jsonEnabled()) {
      for (const v of r.vms) {
        const id = v.identity
        this.log(`${v.name}: base ${v.baseFrom.slice(0, 12)} → ${v.baseTo.slice(0, 12)}; identity +[${id.added.join(' ')}] ~[${id.changed.join(' ')}] -[${id.removed.join(' ')}]${v.restarted ? '; restarted' : ''}`)
        if (r.dryRun && v.xmlDiff.length) this.log(v.xmlDiff.map((l) => `    ${l}`).join('\n'))
      }
    }
    return r
  }
}
