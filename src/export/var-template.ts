// The /var template a KubeVirt VM's DataVolume imports: ext4 labelled `var` with the folders the
// guest contract lists (home/, log/journal/) and no identity — the identity comes from the VM's
// Secret, which the guest copies into /var/identity at boot. One template per /var size, the
// same bytes on every run (fixed UUID, timestamps 0), so its image digest names it.
import { chmod, mkdir, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { chownRoot, mkfsExt4Reproducible } from '../adapters/mkfs.js'
import * as qemuImg from '../adapters/qemu-img.js'
import { SKELETON, VAR_LABEL } from '../services/var-disk.js'

/** Fixed, so the template is reproducible; every exported VM's /var starts as this filesystem. */
export const TEMPLATE_UUID = '6b1e4c3a-0d6f-4f0e-9a51-3c7f1e0a9b21'

/** Writes the template qcow2 to `out`, working in `work` (an empty folder the caller removes). */
export async function writeVarTemplate(out: string, sizeBytes: number, work: string): Promise<void> {
  const root = join(work, 'root')
  for (const d of SKELETON) await mkdir(join(root, d), { recursive: true })
  // Deepest first: making a child changes its parent's mtime.
  for (const d of [...SKELETON].reverse().concat('')) {
    await chmod(join(root, d), 0o755)
    await utimes(join(root, d), 0, 0)
  }
  const raw = join(work, 'var.raw')
  await mkfsExt4Reproducible(raw, sizeBytes, VAR_LABEL, root, TEMPLATE_UUID)
  if (process.getuid?.() !== 0) await chownRoot(raw, SKELETON.map((d) => `/${d}`))
  await qemuImg.convert(raw, 'raw', out)
}
