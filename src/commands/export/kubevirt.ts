import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../../base-command.js'
import { identity } from '../../flags.js'
import { exportKubevirt, type ExportResult } from '../../services/export-kubevirt.js'

export default class ExportKubevirt extends BaseCommand<typeof ExportKubevirt> {
  static override summary = 'Export machines to KubeVirt: containerDisk OCI archives, and a Secret + VirtualMachine per machine'
  static override description = `Writes, under --out: NAME.json per machine (a List of the identity Secret and the VirtualMachine:
UEFI with Secure Boot off, the machine's memory and vCPUs, the base image as a read-only containerDisk,
/var as a DataVolume imported from a blank /var template image, the Secret attached as a disk with
serial fleet-identity that the guest copies into /var/identity at every boot), and an OCI archive per
base image digest and per /var size (one layer, /disk/FILE.qcow2 owned 107:107), ready for
\`skopeo copy oci-archive:FILE docker://IMAGE\`. No container daemon is used. Files appear only
complete; archives already there are kept (their names are their content). NAME.json is mode 0600:
it holds the SSH host private key. --dry-run writes nothing and shows a diff against what is there.`
  static override strict = false
  static override args = { names: Args.string({ description: 'Machine names (default: every machine)' }) }
  static override examples = [
    '<%= config.bin %> export kubevirt web1 --registry registry.example.com/fleet',
    '<%= config.bin %> export kubevirt --registry localhost:5000 --out k8s/ --dry-run   # what would change',
    '<%= config.bin %> export kubevirt web1 web2 --registry registry.example.com/fleet --json',
  ]
  static override flags = {
    registry: Flags.string({ description: 'Registry (and path) the images will be pushed to, e.g. registry.example.com/fleet', required: true }),
    out: Flags.string({ description: 'Folder to write into', default: 'kubevirt' }),
    'dry-run': Flags.boolean({ description: 'Write nothing; show the diff of each NAME.json against the one in --out (secret values as digests)' }),
    identity,
  }

  async run(): Promise<ExportResult> {
    const { argv } = await this.parse(ExportKubevirt)
    const ctx = this.context({ identity: this.flags.identity, dryRun: this.flags['dry-run'] })
    const r = await exportKubevirt(ctx, argv as string[], { registry: this.flags.registry, out: this.flags.out, dryRun: this.flags['dry-run'] })
    if (!this.jsonEnabled()) {
      const would = r.dryRun ? 'would be ' : ''
      for (const m of r.machines) {
        this.log(`${m.name}  ${m.status === 'unchanged' ? 'unchanged' : `${would}${m.status}`}  ${m.file}`)
        if (r.dryRun) for (const l of m.diff) this.log(`  ${l}`)
      }
      for (const a of r.archives) this.log(`${a.status.padEnd(11)}  ${a.file}  (${a.image})`)
      if (!r.dryRun) {
        this.log('Next, push the images and apply:')
        for (const l of r.next) this.log(`  ${l}`)
      }
    }
    return r
  }
}
