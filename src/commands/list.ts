import { BaseCommand } from '../base-command.js'
import { listVms, type ListRow } from '../services/list.js'

export default class List extends BaseCommand<typeof List> {
  static override summary = 'List machines: state, base image digest, memory, vCPUs and how to reach them'
  static override examples = [
    '<%= config.bin %> list',
    '<%= config.bin %> list --json',
    '<%= config.bin %> list --connect qemu:///system',
  ]

  async run(): Promise<{ vms: ListRow[] }> {
    const vms = await listVms(this.paths())
    if (!this.jsonEnabled()) {
      if (!vms.length) this.log('No machines. Create one with `fleet create-vm NAME`.')
      const header = ['NAME', 'STATE', 'BASE', 'MEMORY', 'VCPUS', 'REACH']
      const rows = vms.map((v) => [v.name, v.interrupted ? `${v.state} (interrupted ${v.interrupted}: fleet repair)` : v.state, `${v.base}@${v.baseDigest.slice(0, 12)}`, v.memory, String(v.vcpus), v.reach])
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
      if (vms.length) for (const r of [header, ...rows]) this.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd())
    }
    return { vms }
  }
}
