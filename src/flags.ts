// Flags shared by several commands.
import { Args, Flags } from '@oclif/core'

export const dryRun = Flags.boolean({ description: 'Show what would change; change nothing' })
export const virtType = Flags.string({
  description: 'Domain type: kvm or qemu (TCG). Default: FLEET_VIRT_TYPE, else kvm if a probe guest really runs under KVM',
  options: ['kvm', 'qemu'],
})
export const timeout = Flags.integer({ description: 'Seconds to wait for an ACPI shutdown', default: 60, min: 1 })
export const nameArg = Args.string({ description: 'Machine name (folder in machines/)', required: true })
export const adopt = Flags.boolean({
  description: 'Act on a libvirt domain of this name even if this fleet does not own it (defined by another fleet, an older fleet or another tool); define-vm then writes this fleet\'s id into it',
})
export const identity = Flags.string({
  description: 'Your age identity or SSH private key, to decrypt machine secrets (default: FLEET_AGE_IDENTITY, else ~/.config/fleet/identity.txt, ~/.ssh/id_ed25519, ~/.ssh/id_rsa)',
})
