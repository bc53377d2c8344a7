// kvm where it really works, qemu (TCG) otherwise. Overridden by --virt-type / FLEET_VIRT_TYPE.
// "Really works" means a probe guest ran under KVM (a /dev/kvm that exists can still hang);
// the answer is cached per host boot in the state directory.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { probeAccel } from './adapters/qemu-system.js'
import { UserError } from './errors.js'
import { writeFileAtomic } from './util/fsx.js'
import type { Env } from './util/env.js'
import type { VirtType } from './xml/domain.js'

export function parseVirtType(v: string, source: string): VirtType {
  if (v === 'kvm' || v === 'qemu') return v
  throw new UserError(`${source} "${v}" must be kvm or qemu`)
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return 'unknown'
  }
}

/** Probes KVM once per host boot; the result is kept in <state>/kvm-probe.json. */
export async function autoVirtType(stateDir: string, probe = () => probeAccel('kvm')): Promise<VirtType> {
  if (!existsSync('/dev/kvm')) return 'qemu'
  const cache = join(stateDir, 'kvm-probe.json')
  const id = bootId()
  try {
    const c = JSON.parse(readFileSync(cache, 'utf8')) as { bootId: string; works: boolean }
    if (c.bootId === id) return c.works ? 'kvm' : 'qemu'
  } catch {
    // No cache yet.
  }
  const r = await probe()
  await writeFileAtomic(cache, JSON.stringify({ bootId: id, works: r.works, detail: r.detail }) + '\n').catch(() => {})
  return r.works ? 'kvm' : 'qemu'
}

export async function resolveVirtType(flag: string | undefined, stateDir: string, env: Env = process.env): Promise<VirtType> {
  if (flag) return parseVirtType(flag, '--virt-type')
  if (env.FLEET_VIRT_TYPE) return parseVirtType(env.FLEET_VIRT_TYPE, 'FLEET_VIRT_TYPE')
  return autoVirtType(stateDir)
}
