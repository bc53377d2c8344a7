// Environment overrides (README "Environment"), read in one place.
import { homedir } from 'node:os'
import { join } from 'node:path'

export type Env = Readonly<Record<string, string | undefined>>

/** Splits an override like "sudo -n" into argv words (whitespace only; no shell parsing). */
export function words(value: string | undefined): string[] {
  return (value ?? '').split(/\s+/).filter(Boolean)
}

export function libvirtUri(env: Env = process.env): string {
  // LIBVIRT_URI (the Justfile's name) first, then libvirt's own LIBVIRT_DEFAULT_URI, as virsh does.
  return env.LIBVIRT_URI || env.LIBVIRT_DEFAULT_URI || 'qemu:///system'
}

export function defaultStateDir(env: Env = process.env): string {
  if (env.FLEET_STATE_DIR) return env.FLEET_STATE_DIR
  if (process.getuid?.() === 0) return '/var/lib/fleet'
  return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'fleet')
}
