// Tests that need libvirtd: under CI they must run (a missing libvirtd fails the run);
// elsewhere they are skipped with a visible reason.
import { execaSync } from 'execa'

function probe(): string | undefined {
  try {
    const r = execaSync('virsh', ['-c', 'qemu:///system', 'version'], { reject: false, timeout: 10_000 })
    return r.exitCode === 0 ? undefined : `virsh version failed: ${String(r.stderr).trim()}`
  } catch (e) {
    return (e as Error).message
  }
}

export const libvirtMissing = probe()
if (libvirtMissing && process.env.CI) {
  throw new Error(`CI needs a running libvirtd for the integration tests: ${libvirtMissing}`)
}
if (libvirtMissing) console.log(`skipped: no libvirtd (${libvirtMissing})`)
