import * as Args from '@oclif/core/args'
import { BaseCommand } from '../base-command.js'
import { dryRun, virtType } from '../flags.js'
import { listMachineNames, loadMachine } from '../machines/repository.js'
import { currentBaseDigest, machineXml, writeXml, type XmlWrite } from '../services/domain-xml.js'
import { remoteHost, remoteXmlNow } from '../services/remote-vm.js'

export default class BuildLibvirtXml extends BaseCommand<typeof BuildLibvirtXml> {
  static override summary = 'Write libvirt/NAME.xml for the named machines (all if none); needs no libvirt connection (a VM on a remote host: its volumes are asked there)'
  static override examples = [
    '<%= config.bin %> build-libvirt-xml',
    '<%= config.bin %> build-libvirt-xml web1 db1',
    '<%= config.bin %> build-libvirt-xml && git diff libvirt/',
  ]
  static override strict = false
  static override args = { names: Args.string({ description: 'Machine names' }) }
  static override flags = { 'virt-type': virtType, 'dry-run': dryRun }

  async run(): Promise<{ files: XmlWrite[] }> {
    const ctx = this.context({ virtType: this.flags['virt-type'], dryRun: this.flags['dry-run'] })
    const { argv } = await this.parse(BuildLibvirtXml)
    const names = argv.length ? (argv as string[]) : await listMachineNames(ctx.paths)
    const files: XmlWrite[] = []
    for (const name of names) {
      const m = await loadMachine(ctx.paths, name)
      // A remote VM's XML names volumes of its host: asked there (read only).
      const xml = remoteHost(m) ? await remoteXmlNow(ctx, m) : await machineXml(ctx, m, await currentBaseDigest(ctx.paths, m))
      files.push(await writeXml(ctx.paths, name, xml, ctx.dryRun))
    }
    if (!this.jsonEnabled()) for (const f of files) this.log(`${f.changed ? (ctx.dryRun ? 'would write' : 'wrote') : 'unchanged'}  ${f.file}`)
    return { files }
  }
}
