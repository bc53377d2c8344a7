import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../base-command.js'
import { ExitCode } from '../errors.js'
import { dryRun, identity, timeout, virtType } from '../flags.js'
import { HEALTH_USAGE, parseHealth } from '../services/health.js'
import { upgrade, upgradeFailed, type UpgradeResult } from '../services/upgrade.js'
import { interrupted, SIGNAL_EXIT } from '../util/interrupt.js'

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
next fleet command that touches the VM (or \`fleet repair\`).
Rolling: running VMs are upgraded in waves of at most --max-unavailable, and every VM restarted
must pass --health within --health-timeout before the next wave starts. One that does not is
rolled back to its previous overlay, restarted and checked again; the rollout stops there (exit 3)
and the report says which image each VM is on and whether it is healthy. Stopped VMs are upgraded
last, without being started.`
  static override strict = false
  static override args = { names: Args.string({ description: 'Machine names' }) }
  static override examples = ['<%= config.bin %> upgrade web1', '<%= config.bin %> upgrade --all --dry-run', '<%= config.bin %> upgrade --all --max-unavailable 2 --health ssh', "<%= config.bin %> upgrade --all --health 'console:login:' --health-timeout 120"]
  static override flags = {
    all: Flags.boolean({ description: 'Every machine in machines/' }),
    force: Flags.boolean({ description: 'Power off VMs that do not shut down within --timeout' }),
    timeout,
    'max-unavailable': Flags.integer({ description: 'At most this many running VMs down at once (one wave)', default: 1, min: 1 }),
    health: Flags.string({ description: `What a restarted VM must pass before the next wave: ${HEALTH_USAGE} (console: its serial console prints REGEX after the restart)`, default: 'agent' }),
    'health-timeout': Flags.integer({ description: 'Seconds a restarted VM has to pass its health check', default: 300, min: 1 }),
    keep: Flags.integer({ description: 'Rollback points (earlier boot overlays) each upgraded VM keeps', default: 2, min: 1 }),
    'virt-type': virtType,
    adopt: Flags.boolean({ description: 'Upgrade a VM even if the libvirt domain of its name is not this fleet\'s (defined by hand or by another fleet); it becomes this fleet\'s' }),
    identity,
    'dry-run': dryRun,
  }

  async run(): Promise<UpgradeResult> {
    const { argv } = await this.parse(Upgrade)
    const ctx = this.context({ virtType: this.flags['virt-type'], dryRun: this.flags['dry-run'], adopt: this.flags.adopt, identity: this.flags.identity })
    const health = parseHealth(this.flags.health)
    const r = await upgrade(ctx, argv as string[], { all: this.flags.all, timeoutS: this.flags.timeout, force: this.flags.force, maxUnavailable: this.flags['max-unavailable'], health, healthTimeoutS: this.flags['health-timeout'], keep: this.flags.keep })
    if (!this.jsonEnabled()) {
      for (const v of r.vms) {
        const id = v.identity
        const what = `base ${v.baseFrom.slice(0, 12)} → ${v.baseTo.slice(0, 12)}; identity +[${id.added.join(' ')}] ~[${id.changed.join(' ')}] -[${id.removed.join(' ')}]`
        const now = `on ${v.image.slice(0, 12)}${v.healthy === undefined ? '' : v.healthy ? ', healthy' : ', UNHEALTHY'}`
        this.log(`${v.name}: ${v.outcome}${v.wave ? ` (wave ${v.wave})` : ''}${v.outcome === 'unchanged' ? '' : ` (${what})`}${v.restarted ? '; restarted' : ''}; ${now}${v.error ? `\n    why: ${v.error}\n    now: ${v.state}` : ''}`)
        if (r.dryRun && v.xmlDiff.length) this.log(v.xmlDiff.map((l) => `    ${l}`).join('\n'))
      }
      if (r.stopped) this.log(r.stopped)
    }
    const failed = r.vms.filter(upgradeFailed)
    if (failed.length) {
      // The result (every VM's outcome) is still printed; the status says not all went well.
      this.progress(`${failed.length} of ${r.vms.length} VM(s) failed, rolled back or not started: ${failed.map((v) => `${v.name} (${v.outcome})`).join(', ')}`)
      process.exitCode = ExitCode.tool
    }
    // Ctrl-C / SIGTERM stopped a step (each VM it hit is back where it was, or finished): the
    // report above still holds, and the status is the signal's, as for every other command.
    const sig = interrupted()
    if (sig) process.exitCode = SIGNAL_EXIT[sig] ?? 130
    return r
  }
}
