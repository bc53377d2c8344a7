// qemu-system: a one-second probe that KVM really runs guest code (nested KVM often hangs).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tryRun } from './exec.js'

/** A boot sector that writes 0x31 to the isa-debug-exit port: qemu exits with (0x31<<1)|1 = 99. */
function probeSector(): Buffer {
  const b = Buffer.alloc(512)
  Buffer.from([0xb0, 0x31, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]).copy(b) // mov al,0x31; out 0xf4,al; hlt; jmp $
  b[510] = 0x55
  b[511] = 0xaa
  return b
}

export interface KvmProbe {
  works: boolean
  ms: number
  detail: string
}

/** Boots the probe sector under `accel`; works only if it exits as expected within `timeoutMs`. */
export async function probeAccel(accel: 'kvm' | 'tcg', timeoutMs = 3000): Promise<KvmProbe> {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-probe-'))
  const img = join(dir, 'probe.img')
  const t0 = performance.now()
  try {
    await writeFile(img, probeSector())
    const r = await tryRun(['qemu-system-x86_64'], [
      '-machine', `pc,accel=${accel}`, '-display', 'none', '-nodefaults', '-no-user-config', '-m', '16',
      '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-drive', `file=${img},format=raw,if=floppy`,
    ], { timeoutMs })
    const ms = Math.round(performance.now() - t0)
    return r.exitCode === 99 ? { works: true, ms, detail: `ran a test guest in ${ms} ms` } : { works: false, ms, detail: (r.stderr.trim().split('\n').pop() || `exit ${r.exitCode}`) }
  } catch (e) {
    return { works: false, ms: Math.round(performance.now() - t0), detail: (e as Error).message.split('\n')[0] ?? 'failed' }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
