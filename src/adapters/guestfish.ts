// guestfish: writes identity files into /var disks. One appliance launch serves many disks.
import { words } from '../util/env.js'
import { run } from './exec.js'

const guestfish = (): string[] => words(process.env.GUESTFISH || 'guestfish')

let applianceTcg = false
/**
 * Where KVM does not really work (the domain type resolved to qemu), the appliance must not try
 * it either: libguestfs would hang on such a /dev/kvm. LIBGUESTFS_BACKEND_SETTINGS still wins.
 */
export function useTcgAppliance(tcg: boolean): void {
  applianceTcg = tcg
}

function gfEnv(): Record<string, string> {
  const env: Record<string, string> = { LIBGUESTFS_BACKEND: process.env.LIBGUESTFS_BACKEND || 'direct' }
  if (process.env.LIBGUESTFS_BACKEND_SETTINGS) env.LIBGUESTFS_BACKEND_SETTINGS = process.env.LIBGUESTFS_BACKEND_SETTINGS
  else if (applianceTcg) env.LIBGUESTFS_BACKEND_SETTINGS = 'force_tcg'
  return env
}

/** One guestfish command as an argument list; commands are joined with ':' argv separators. */
export type GfCommand = string[]

/** Runs commands against disks in ONE appliance launch. Disk i is /dev/sd{a+i}. */
export async function runGuestfish(disks: string[], commands: GfCommand[], opts: { readonly?: boolean } = {}): Promise<string> {
  const add = disks.flatMap((file) => ['-a', file])
  const script = commands.flatMap((c) => [':', ...c])
  const mode = opts.readonly ? '--ro' : '--rw'
  const r = await run(guestfish(), [mode, '--format=qcow2', ...add, '--', 'run', ...script], { env: gfEnv(), privileged: !opts.readonly })
  return r.stdout
}

export function deviceOf(index: number): string {
  return `/dev/sd${String.fromCharCode(97 + index)}`
}
