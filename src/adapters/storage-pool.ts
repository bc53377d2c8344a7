// libvirt's storage API on a (remote) host, through virsh -c URI: fleet's pool there and its
// volumes. Disks on a remote host are made, filled, listed and deleted only through these verbs
// (vol-create-as, vol-upload, vol-delete), so fleet never opens a file of that host itself.
import { run, tryRun } from './exec.js'
import { virsh } from './libvirt.js'

/** The pool fleet keeps its disks in on every host (also what virt-manager and Cockpit show). */
export const FLEET_POOL = 'fleet'

export interface Volume {
  name: string
  path: string
  /** The path of its backing volume (a boot overlay's base image), if any. */
  backing?: string
  capacity: number
}

const v = (uri: string, args: string[]) => run(virsh(uri), args)

/** Makes sure the pool exists (a dir pool at `target`), is built, running and autostarted. */
export async function ensurePool(uri: string, target: string): Promise<void> {
  const info = await tryRun(virsh(uri), ['pool-info', FLEET_POOL])
  if (info.exitCode !== 0) {
    await v(uri, ['pool-define-as', FLEET_POOL, 'dir', '--target', target])
    await v(uri, ['pool-build', FLEET_POOL])
    await v(uri, ['pool-autostart', FLEET_POOL])
  }
  if (!/^State:\s+running/m.test(info.stdout)) {
    const r = await tryRun(virsh(uri), ['pool-start', FLEET_POOL])
    if (r.exitCode !== 0 && !/already active/i.test(r.stderr)) await v(uri, ['pool-start', FLEET_POOL])
  }
  await refreshPool(uri)
}

/** Makes the pool list what is in its folder now (and probe the formats of uploaded volumes). */
export async function refreshPool(uri: string): Promise<void> {
  await v(uri, ['pool-refresh', FLEET_POOL])
}

/** The volume, or undefined if the pool has none of that name. */
export async function volume(uri: string, name: string): Promise<Volume | undefined> {
  const r = await tryRun(virsh(uri), ['vol-dumpxml', '--pool', FLEET_POOL, name])
  if (r.exitCode !== 0) {
    if (/Storage volume not found|no storage vol/i.test(r.stderr)) return undefined
    await v(uri, ['vol-dumpxml', '--pool', FLEET_POOL, name]) // throws the ToolError
  }
  const xml = r.stdout
  const path = /<target>\s*<path>([^<]+)<\/path>/.exec(xml)?.[1] ?? ''
  const backing = /<backingStore>\s*<path>([^<]+)<\/path>/.exec(xml)?.[1]
  const capacity = Number(/<capacity unit='bytes'>(\d+)</.exec(xml)?.[1] ?? 0)
  return { name, path, capacity, ...(backing ? { backing } : {}) }
}

/** Names of every volume in the pool. */
export async function volumeNames(uri: string): Promise<string[]> {
  const r = await v(uri, ['vol-list', '--pool', FLEET_POOL])
  return r.stdout.split('\n').slice(2).map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean)
}

/** A new volume: raw (sparse) or qcow2, optionally backed by another volume of the pool (qcow2). */
export async function createVolume(uri: string, name: string, bytes: number, format: 'raw' | 'qcow2', backing?: string): Promise<Volume> {
  await v(uri, ['vol-create-as', FLEET_POOL, name, `${bytes}b`, '--format', format, ...(format === 'raw' ? ['--allocation', '0'] : []),
    ...(backing ? ['--backing-vol', backing, '--backing-vol-format', 'qcow2'] : [])])
  const made = await volume(uri, name)
  if (!made) throw new Error(`bug: volume ${name} missing right after vol-create-as`)
  return made
}

/** Streams a local file into an existing volume (libvirt's stream API). */
export async function upload(uri: string, name: string, file: string): Promise<void> {
  await v(uri, ['vol-upload', '--pool', FLEET_POOL, name, file])
}

/** Deletes a volume; one already gone is fine. */
export async function deleteVolume(uri: string, name: string): Promise<void> {
  const r = await tryRun(virsh(uri), ['vol-delete', '--pool', FLEET_POOL, name])
  if (r.exitCode !== 0 && !/Storage volume not found|no storage vol/i.test(r.stderr)) await v(uri, ['vol-delete', '--pool', FLEET_POOL, name])
}
