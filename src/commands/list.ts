import { BaseCommand } from '../base-command.js'
import * as Flags from '@oclif/core/flags'
import { listVms, type ListRow } from '../services/list.js'
import { listHosts, type HostRow } from '../services/hosts.js'

export default class List extends BaseCommand<typeof List> {
  static override summary = 'List machines: state, base image digest, memory, vCPUs and how to reach them'
  static override examples = [
    '<%= config.bin %> list',
    '<%= config.bin %> list --json',
    '<%= config.bin %> list --connect qemu:///system',
    '<%= config.bin %> list --hosts',
  ]
  static override flags = {
    hosts: Flags.boolean({ description: 'List the libvirt hosts instead: their VMs and, on remote hosts, the base images shipped there with how many VMs use each' }),
  }

  async run(): Promise<{ vms: ListRow[] } | { hosts: HostRow[] }> {
    if (this.flags.hosts) {
      const hosts = await listHosts(this.paths())
      if (!this.jsonEnabled()) {
        for (const h of hosts) {
          this.log(`${h.host}  ${h.uri}`)
          this.log(`  VMs: ${h.vms.join(', ')}`)
          if (h.images) for (const [d, n] of Object.entries(h.images)) this.log(`  base ${d.slice(0, 12)}: used by ${n} VM${n === 1 ? '' : 's'}`)
          if (h.error) this.log(`  unreachable: ${h.error}`)
        }
      }
      return { hosts }
    }
    const vms = await listVms(this.paths())
    if (!this.jsonEnabled()) {
      if (!vms.length) this.log('No machines. Create one with `fleet create-vm NAME`.')
      const header = ['NAME', 'HOST', 'STATE', 'BASE', 'MEMORY', 'VCPUS', 'REACH']
      const rows = vms.map((v) => [v.name, v.host, v.interrupted ? `${v.state} (interrupted ${v.interrupted}: fleet repair)` : v.state, `${v.base}@${v.baseDigest.slice(0, 12)}`, v.memory, String(v.vcpus), v.reach])
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
      if (vms.length) for (const r of [header, ...rows]) this.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd())
    }
    return { vms }
  }
}
