// Flags shared by several commands.
import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { defaultSpec, FIELDS, formatAnswer, isMultiple, type Field } from './machines/fields.js'

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
/** The image store channel: one flag name in every command; an older name stays accepted, hidden (not in help, no warning: scripts keep working). */
export const channel = (description: string, alias?: string) =>
  Flags.string({ description, default: 'base', ...(alias ? { aliases: [alias] } : {}) })

/** create-vm's setting flags, one per row of machines/fields.ts (help text and default from the row). */
export function fieldFlags() {
  const defaults = defaultSpec()
  return Object.fromEntries((FIELDS as readonly Field[]).map((f) => {
    const def = f.kind === 'keys' ? '' : formatAnswer(f, defaults[f.key]) || (isMultiple(f) ? '' : (f.emptyDefault ?? 'none'))
    const opts = { description: f.description + (def ? ` (default ${def})` : ''), helpGroup: f.group, ...(f.alias ? { aliases: [f.alias] } : {}) }
    return [f.flag, isMultiple(f) ? Flags.string({ ...opts, multiple: true }) : Flags.string(opts)]
  })) as Record<string, ReturnType<typeof Flags.string>>
}

export const identity = Flags.string({
  description: 'Your age identity or SSH private key, to decrypt machine secrets (default: FLEET_AGE_IDENTITY, else ~/.config/fleet/identity.txt, ~/.ssh/id_ed25519, ~/.ssh/id_rsa)',
})
