import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { existsSync } from 'node:fs'
import { machineDir } from '../machines/repository.js'
import { vmName, vmNames } from '../name.js'
import { anyFailed, BATCH_CONCURRENCY, batchExitCode, batchVms, eachVm, type BatchVm } from '../services/batch.js'
import { BaseCommand } from '../base-command.js'
import { dryRun, fieldFlags, identity, virtType } from '../flags.js'
import { DEFAULTS } from '../machines/model.js'
import { askNewMachine, canPrompt } from '../prompts/new-machine.js'
import { createVm, withCreateBatch, type CreateVmResult } from '../services/create-vm.js'
import { specFromFlags } from '../services/new-machine-spec.js'

export default class CreateVm extends BaseCommand<typeof CreateVm> {
  static override summary = 'Create a VM: definition in machines/NAME (if missing), boot overlay, /var disk with identity, XML, domain'
  static override description = `If machines/NAME does not exist, it is written first:
- at a terminal, fleet asks for every setting not given as a flag (each question is a flag), re-asks when an
  answer is refused, shows a summary and asks to confirm;
- with --yes, the defaults fill in anything not given, and nothing is asked;
- without a terminal and without --yes, nothing is asked either: the hardware flags (--memory --vcpus
  --var-size --channel --network) must be given, the rest default (DNS ${DEFAULTS.dns.join(',')}, TCP ports ${DEFAULTS.tcpPorts.join(',')}, no keys).
If it exists (e.g. checked out from git), its machine.json and identity files are used as they are, after the
same checks (plus: memory fits this host, the network exists here, no other machine shares its MAC or UUID).
A bad value stops the run before anything is written, naming the machine, the field and the value.
A /var disk that \`fleet destroy-vm\` kept is reused, never overwritten: its data stays and its identity
is resynced to machines/NAME. A failure or Ctrl-C half way removes everything this run created (never a
kept /var disk).
Several names: nothing is asked. Each existing machines/NAME is used as it is; each missing one is written
from the flags (which then apply to every new machine; MAC, UUID and SSH port are picked per machine), and
without --yes the hardware flags must be given, as without a terminal. Each VM is created on its own (its
own lock and undo); one that fails is reported and the others go on (exit 3).`
  static override examples = [
    '<%= config.bin %> create-vm web1                       # at a terminal: asks for each setting',
    '<%= config.bin %> create-vm web1 --memory 512M --vcpus 1 --var-size 1G --network none --yes',
    '<%= config.bin %> create-vm web1 web2 web3 --memory 512M --network none --yes   # several, nothing asked',
    '<%= config.bin %> create-vm db1 --memory 2G --vcpus 2 --var-size 20G --network default --tcp-ports 22,5432 --admin-key ~/.ssh/id_ed25519.pub --start',
  ]
  static override strict = false
  static override args = { name: Args.string({ description: 'Machine names (folders in machines/); several only without questions', required: true }) }
  static override flags = {
    ...fieldFlags(),
    yes: Flags.boolean({ char: 'y', description: 'Take the defaults for anything not given; never ask' }),
    start: Flags.boolean({ description: 'Start the VM once defined' }),
    'virt-type': virtType,
    identity,
    'dry-run': dryRun,
  }

  async run(): Promise<CreateVmResult | { vms: BatchVm[] }> {
    const { argv } = await this.parse(CreateVm)
    const f = this.flags
    const names = argv.length === 1 ? [vmName(this.args.name)] : vmNames(argv as string[])
    const given = await specFromFlags(f)
    // Questions only for one machine: a batch never waits for a terminal.
    const ask = f.yes || names.length > 1 || !canPrompt() ? undefined : askNewMachine
    const ctx = await this.context({ virtType: f['virt-type'], dryRun: f['dry-run'], identity: f.identity })
    const show = async (r: CreateVmResult) => {
      if (this.jsonEnabled()) return
      this.log(`${r.dryRun ? 'Would create' : 'Created'} ${r.name} on ${r.baseDigest.slice(0, 12)} (${await ctx.virtType()})${r.started ? ', started' : r.defined ? ', defined' : ''}`)
      this.log(`  definition ${r.machineDir} (${r.definition})\n  boot ${r.boot}\n  /var ${r.var}${r.varReused ? ' (the kept /var disk, reused; identity resynced)' : ''}\n  xml  ${r.xml}`)
      if (r.login) this.log(`  login admin with ${r.login.source === 'user' ? `your key ${r.login.file}` : `fleet's key pair ${r.login.file.replace(/\.pub$/, '')}${r.login.created ? (r.dryRun ? ' (would be made)' : ' (made now)') : ''}; \`fleet ssh ${r.name}\` uses it`} (no --admin-key given)`)
    }
    if (names.length === 1) {
      const r = await createVm(ctx, names[0]!, { given, yes: f.yes, ask }, { start: f.start })
      await show(r)
      return r
    }
    // New definitions pick their MAC, UUID and SSH port against the ones written before them: one at a time.
    const anyNew = names.some((n) => !existsSync(machineDir(ctx.paths, n)))
    const out = await withCreateBatch(ctx.paths, (batch) => eachVm(names, (n) => createVm({ ...ctx, log: (l) => ctx.log(`${n}: ${l}`) }, n, { given, yes: f.yes }, { start: f.start }, batch), this.progress, anyNew ? 1 : BATCH_CONCURRENCY))
    for (const o of out) if (o.result) await show(o.result)
    else if (!this.jsonEnabled()) this.log(`${o.name}: FAILED: ${o.error}`)
    if (anyFailed(out)) process.exitCode = batchExitCode(out)
    return { vms: batchVms(out, (r) => (r.dryRun ? 'would create' : 'created')) }
  }
}
