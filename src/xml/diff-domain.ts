// Drift between the domain fleet would define and the one libvirt holds, compared as models:
// each differing field, and whether libvirt applies it to a running domain or it waits for a
// restart (a redefine changes only the persistent definition).
import type { Domain } from './domain.js'

/** `live`: applied without a restart (fleet's metadata; lifecycle actions via set-lifecycle-action --live). `restart`: the running guest keeps the old value until it is restarted. */
export type ApplyMode = 'live' | 'restart'

export interface DomainChange {
  /** Path in the domain model, e.g. memoryKiB or devices.disks[1].source. */
  field: string
  from: string
  to: string
  apply: ApplyMode
}

/** Lifecycle fields and the virsh set-lifecycle-action type that changes them live. */
export const LIFECYCLE_FIELDS = { onPoweroff: 'poweroff', onReboot: 'reboot', onCrash: 'crash' } as const

export function applyMode(field: string): ApplyMode {
  if (field.startsWith('metadata.')) return 'live' // fleet's own record: no effect on the guest
  if (field in LIFECYCLE_FIELDS) return 'live'
  return 'restart'
}

/** Field path -> value of every leaf of a model (arrays by index; absent optionals are absent). */
export function flatten(v: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(v)) {
    out.set(`${prefix}.length`, String(v.length))
    v.forEach((x, i) => flatten(x, `${prefix}[${i}]`, out))
  } else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) if (x !== undefined) flatten(x, prefix ? `${prefix}.${k}` : k, out)
  } else if (v !== undefined) {
    out.set(prefix, String(v))
  }
  return out
}

/**
 * libvirt fills in what fleet leaves out: a domain without <cpu> gets the hypervisor's default
 * custom model. That is not drift.
 */
function normalise(actual: Domain, desired: Domain): Domain {
  if (!desired.cpu && actual.cpu?.mode === 'custom') return { ...actual, cpu: undefined }
  return actual
}

/** Every field where `actual` differs from `desired`, in model order. */
export function diffDomain(desired: Domain, actual: Domain): DomainChange[] {
  const want = flatten(desired)
  const have = flatten(normalise(actual, desired))
  const fields = [...want.keys(), ...[...have.keys()].filter((k) => !want.has(k))]
  return fields
    .filter((f) => want.get(f) !== have.get(f))
    .map((f) => ({ field: f, from: have.get(f) ?? '(none)', to: want.get(f) ?? '(none)', apply: applyMode(f) }))
}
