// Removes what earlier, failed runs left behind: test domains (with NVRAM) and their state dirs.
import { execa } from 'execa'
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TEST_PREFIX } from './fleet.js'

/** A boot verification's throwaway domain whose disks are gone: its run (and sandbox) ended without removing it. */
async function orphanedVerifyDomain(name: string): Promise<boolean> {
  if (!name.startsWith('fleet-verify.')) return false
  const r = await execa('virsh', ['-c', 'qemu:///system', 'domblklist', name], { reject: false })
  const sources = String(r.stdout).split('\n').map((l) => l.trim().split(/\s+/)[1]).filter((s): s is string => Boolean(s?.startsWith('/')))
  return r.exitCode === 0 && sources.length > 0 && sources.every((s) => s.startsWith(tmpdir()) && !existsSync(s))
}

export async function removeTestDomains(): Promise<string[]> {
  const r = await execa('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'], { reject: false })
  if (r.exitCode !== 0) return []
  const all = String(r.stdout).split('\n').map((s) => s.trim()).filter(Boolean)
  const names = all.filter((n) => n.startsWith(TEST_PREFIX))
  for (const n of all) if (await orphanedVerifyDomain(n)) names.push(n)
  for (const n of names) {
    await execa('virsh', ['-c', 'qemu:///system', 'destroy', n], { reject: false })
    await execa('virsh', ['-c', 'qemu:///system', 'undefine', '--nvram', n], { reject: false })
  }
  return names
}

export default async function setup(): Promise<() => Promise<void>> {
  const removed = await removeTestDomains()
  if (removed.length) console.log(`removed ${removed.length} test domains left by an earlier run: ${removed.join(', ')}`)
  const hourAgo = Date.now() - 3600_000
  for (const d of readdirSync(tmpdir())) {
    const p = join(tmpdir(), d)
    if (d.startsWith('fleet-test-') && statSync(p).mtimeMs < hourAgo) rmSync(p, { recursive: true, force: true })
  }
  return async () => {
    await removeTestDomains()
  }
}
