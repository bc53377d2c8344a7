import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../base-command.js'
import { doctor, type Check } from '../services/doctor.js'

export default class Doctor extends BaseCommand<typeof Doctor> {
  static override summary = 'Check this host: tools, libvirt connection, UEFI firmware, guestfish, whether KVM really runs guests'
  static override examples = [
    '<%= config.bin %> doctor',
    '<%= config.bin %> doctor --deep',
    '<%= config.bin %> doctor --json',
  ]
  static override flags = { deep: Flags.boolean({ description: 'Also launch the guestfish appliance once (30 s without KVM)' }) }

  async run(): Promise<{ ok: boolean; checks: Check[] }> {
    const checks = await doctor({ deep: this.flags.deep })
    const ok = checks.every((c) => c.ok || c.name === 'kvm' || c.name === 'identity sync without appliance') // both have a slower fallback
    if (!this.jsonEnabled()) {
      for (const c of checks) {
        this.log(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(20)} ${c.detail}`)
        if (!c.ok && c.fix) this.log(`      fix: ${c.fix}`)
      }
    }
    if (!ok) process.exitCode = 2
    return { ok, checks }
  }
}
