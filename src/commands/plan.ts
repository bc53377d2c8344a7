import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../base-command.js'
import { ExitCode } from '../errors.js'
import { identity, virtType } from '../flags.js'
import { planFleet, type PlanResult } from '../services/plan.js'
import { kubevirtDrift, renderDrift, type KubevirtDrift } from '../services/plan-kubevirt.js'
import { renderPlan } from '../render-plan.js'

export default class Plan extends BaseCommand<typeof Plan> {
  static override summary = 'Show what differs between machines/ (and the channels) and the VMs really there; change nothing'
  static override description = `For each machine (or the named ones) and each orphan of this fleet:
create (no domain, no boot overlay), define (disks but no domain), redefine (the domain libvirt holds
differs from machines/NAME: each field, and whether libvirt applies it live or it needs a restart),
upgrade (boot overlay behind its channel, or identity files changed since fleet last wrote them),
orphan (a domain carrying this fleet's id, or disks, with no machines/ folder), foreign (a domain of a
machine's name that another tool or fleet owns: reported, never touched), broken, or in sync.
Reads libvirt over one connection and qcow2 headers and manifests itself: no lock, no process per VM.`
  static override strict = false
  static override args = { names: Args.string({ description: 'Machine names (default: every machine and orphan)' }) }
  static override examples = ['<%= config.bin %> plan', '<%= config.bin %> plan web1 web2 --json', '<%= config.bin %> plan --detailed-exitcode   # exit 5 when anything is pending (CI)', '<%= config.bin %> plan --kubevirt kubevirt/   # also: how an earlier `fleet export kubevirt` folder drifted']
  static override flags = {
    'detailed-exitcode': Flags.boolean({ description: `Exit ${ExitCode.changes} when anything is not in sync (0 when all is), as terraform plan -detailed-exitcode` }),
    'virt-type': virtType,
    kubevirt: Flags.string({ description: 'Also compare a `fleet export kubevirt` folder with what an export would write now (secret values as digests)' }),
    identity,
  }

  async run(): Promise<PlanResult & { kubevirt?: KubevirtDrift[] }> {
    const { argv } = await this.parse(Plan)
    const ctx = this.context({ virtType: this.flags['virt-type'], dryRun: true, identity: this.flags.identity })
    const r: PlanResult & { kubevirt?: KubevirtDrift[] } = await planFleet(ctx, argv as string[])
    if (this.flags.kubevirt) {
      r.kubevirt = await kubevirtDrift(ctx, argv as string[], this.flags.kubevirt)
      if (r.kubevirt.some((d) => d.status !== 'in-sync')) r.pending = true
    }
    if (!this.jsonEnabled()) for (const l of [...renderPlan(r), ...(r.kubevirt ? renderDrift(this.flags.kubevirt!, r.kubevirt) : [])]) this.log(l)
    if (this.flags['detailed-exitcode'] && r.pending) process.exitCode = ExitCode.changes
    return r
  }
}
