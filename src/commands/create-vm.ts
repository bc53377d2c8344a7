import { Flags } from '@oclif/core'
import { BaseCommand } from '../base-command.js'
import { dryRun, nameArg, virtType } from '../flags.js'
import { defaultSpec, type NewMachineSpec } from '../machines/new-machine.js'
import { splitList } from '../machines/validate.js'
import { createVm, type CreateVmResult } from '../services/create-vm.js'
import { readKeyArgs } from '../services/keys.js'

export default class CreateVm extends BaseCommand<typeof CreateVm> {
  static override summary = 'Create a VM: definition in machines/NAME (if missing), boot overlay, /var disk with identity, XML, domain'
  static override description = `If machines/NAME does not exist it is written from the flags (defaults for anything not given).
If it exists (e.g. checked out from git), its machine.json and identity files are used as they are.
A failure or Ctrl-C half way removes everything this run created.`
  static override examples = [
    '<%= config.bin %> create-vm web1 --memory 512M --vcpus 1 --var-size 1G --network none --yes',
    '<%= config.bin %> create-vm db1 --memory 2G --vcpus 2 --var-size 20G --network default --tcp-ports 22,5432 --admin-key ~/.ssh/id_ed25519.pub --start',
  ]
  static override args = { name: nameArg }
  static override flags = {
    memory: Flags.string({ description: 'Memory, e.g. 512M or 2G', helpGroup: 'HARDWARE' }),
    vcpus: Flags.string({ description: 'Number of virtual CPUs', helpGroup: 'HARDWARE' }),
    'var-size': Flags.string({ description: 'Size of the /var disk, e.g. 1G', helpGroup: 'HARDWARE' }),
    base: Flags.string({ description: 'Image store channel to boot from', helpGroup: 'HARDWARE' }),
    network: Flags.string({ description: 'libvirt network name, "user" (user-mode, SSH forward on 127.0.0.1) or "none"', helpGroup: 'HARDWARE' }),
    arch: Flags.string({ description: 'Guest architecture', options: ['x86_64', 'aarch64'], helpGroup: 'HARDWARE' }),
    dns: Flags.string({ description: 'DNS servers for resolv.conf, comma-separated IPs', helpGroup: 'IDENTITY' }),
    host: Flags.string({ description: 'Extra /etc/hosts line "ADDRESS NAME" (repeatable)', multiple: true, helpGroup: 'IDENTITY' }),
    'tcp-ports': Flags.string({ description: 'TCP ports the guest firewall opens, comma-separated (default 22)', helpGroup: 'IDENTITY' }),
    'udp-ports': Flags.string({ description: 'UDP ports the guest firewall opens, comma-separated', helpGroup: 'IDENTITY' }),
    'admin-key': Flags.string({ description: 'SSH public key (file or key text) for the admin user (repeatable)', multiple: true, helpGroup: 'IDENTITY' }),
    'user-key': Flags.string({ description: 'SSH public key (file or key text) for the plain user (repeatable)', multiple: true, helpGroup: 'IDENTITY' }),
    yes: Flags.boolean({ char: 'y', description: 'Take defaults for anything not given; never ask' }),
    start: Flags.boolean({ description: 'Start the VM once defined' }),
    'virt-type': virtType,
    'dry-run': dryRun,
  }

  async run(): Promise<CreateVmResult> {
    const f = this.flags
    const d = defaultSpec()
    const spec: NewMachineSpec = {
      memory: f.memory ?? d.memory,
      vcpus: (f.vcpus ?? String(d.vcpus)) as unknown as number,
      varSize: f['var-size'] ?? d.varSize,
      base: f.base ?? d.base,
      network: f.network ?? d.network,
      arch: (f.arch ?? d.arch) as NewMachineSpec['arch'],
      dns: f.dns !== undefined ? splitList(f.dns) : d.dns,
      hosts: f.host ?? d.hosts,
      tcpPorts: f['tcp-ports'] !== undefined ? splitList(f['tcp-ports']) : d.tcpPorts,
      udpPorts: f['udp-ports'] !== undefined ? splitList(f['udp-ports']) : d.udpPorts,
      adminKeys: await readKeyArgs(f['admin-key'] ?? []),
      userKeys: await readKeyArgs(f['user-key'] ?? []),
    }
    const ctx = await this.context({ virtType: f['virt-type'], dryRun: f['dry-run'] })
    const r = await createVm(ctx, this.args.name, spec, { start: f.start })
    if (!this.jsonEnabled()) {
      this.log(`${r.dryRun ? 'Would create' : 'Created'} ${r.name} on ${r.baseDigest.slice(0, 12)} (${await ctx.virtType()})${r.started ? ', started' : r.defined ? ', defined' : ''}`)
      this.log(`  definition ${r.machineDir} (${r.definition})\n  boot ${r.boot}\n  /var ${r.var}\n  xml  ${r.xml}`)
    }
    return r
  }
}
