import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../base-command.js'
import { ExitCode } from '../errors.js'
import { dryRun, identity, timeout, virtType } from '../flags.js'
import { applyFailed, applyFleet, type ApplyResult } from '../services/apply.js'
import { renderPlan } from '../render-plan.js'
import { HEALTH_USAGE, parseHealth } from '../services/health.js'

export default class Apply extends BaseCommand<typeof Apply> {
  static override summary = 'Make the VMs match machines/ and the channels: create, (re)define, upgrade; destroy orphans after asking'
  static override description = `Carries out \`fleet plan\` in one process. Each VM goes through the same operation as its single
command — create-vm, define-vm, upgrade, destroy-vm — with its lock, intent record, undo and recovery, and is
checked again under its lock. Missing VMs are created (not started, unless --start). A redefine libvirt can
apply live (fleet's metadata, lifecycle actions) restarts nothing; one that needs a restart restarts a
running VM gracefully (ACPI, --timeout, --force), or with --no-restart leaves it for its next restart.
Upgrades run as \`fleet upgrade\` of those VMs (waves, health check and rollback points as its flags say). Orphans (this fleet's domains or disks with no machines/
folder) are destroyed only when confirmed (--yes, or asked at a terminal; otherwise nothing is changed);
their /var disk is always kept. Foreign domains are reported and never touched.
Each VM's outcome is listed; the exit status is 3 when any VM failed.`
  static override strict = false
  static override args = { names: Args.string({ description: 'Machine names (default: every machine and orphan)' }) }
  static override examples = ['<%= config.bin %> apply', '<%= config.bin %> apply web1 web2', '<%= config.bin %> apply --yes --json']
  static override flags = {
    yes: Flags.boolean({ char: 'y', description: 'Destroy orphans without asking (their /var disk is kept)' }),
    'no-restart': Flags.boolean({ description: 'Redefine running VMs without restarting them; changes that need a restart wait for the next one' }),
    start: Flags.boolean({ description: 'Start the VMs apply creates' }),
    force: Flags.boolean({ description: 'Power off VMs that do not shut down within --timeout (restart, upgrade, orphan)' }),
    timeout,
    'max-unavailable': Flags.integer({ description: 'Upgrades: at most this many running VMs down at once (as fleet upgrade)', default: 1, min: 1 }),
    health: Flags.string({ description: `Upgrades: what a restarted VM must pass before the next wave: ${HEALTH_USAGE}`, default: 'agent' }),
    'health-timeout': Flags.integer({ description: 'Upgrades: seconds a restarted VM has to pass its health check', default: 300, min: 1 }),
    keep: Flags.integer({ description: 'Upgrades: rollback points each upgraded VM keeps', default: 2, min: 1 }),
    'virt-type': virtType,
    identity,
    'dry-run': dryRun,
  }

  async run(): Promise<ApplyResult> {
    const { argv } = await this.parse(Apply)
    const f = this.flags
    const ctx = this.context({ virtType: f['virt-type'], dryRun: f['dry-run'], identity: f.identity })
    const r = await applyFleet(ctx, argv as string[], {
      confirm: async (orphans) => {
        if (f.yes) return true
        if (!process.stdin.isTTY || this.jsonEnabled()) return false
        // Loaded only to ask: the prompt library is a large part of start-up.
        const { confirm } = await import('@inquirer/prompts')
        return confirm({ message: `Destroy ${orphans.map((o) => o.name).join(', ')} (domain and boot overlay; /var disks are kept)?`, default: false })
      },
      restart: !f['no-restart'], start: f.start, timeoutS: f.timeout, force: f.force,
      rolling: { maxUnavailable: f['max-unavailable'], health: parseHealth(f.health), healthTimeoutS: f['health-timeout'], keep: f.keep },
    })
    if (!this.jsonEnabled()) {
      if (r.dryRun) for (const l of renderPlan(r.plan)) this.log(l)
      else {
        for (const v of r.vms) {
          const extra = [v.restarted ? 'restarted' : '', v.restartPending ? 'restart pending' : '', v.error ? `why: ${v.error}` : ''].filter(Boolean).join('; ')
          this.log(`${v.name}: ${v.outcome} (${v.action}${extra ? `; ${extra}` : ''})`)
        }
      }
    }
    if (applyFailed(r)) {
      const failed = r.vms.filter((v) => v.outcome === 'failed')
      this.progress(`${failed.length} of ${r.vms.length} VM(s) failed: ${failed.map((v) => v.name).join(', ')}`)
      process.exitCode = ExitCode.tool
    }
    return r
  }
}
