// A remote VM's disks, all in fleet's storage pool on its host: base images shipped once per
// digest (vol-upload, checked with sha256sum there, then marked complete), boot overlays as
// volumes backed by them, and the /var disk as a raw volume whose ext4 is made and rewritten by
// e2fsprogs run on that host (remote-var.ts). Nothing here opens a file of the host from this one.
import { runOn } from '../adapters/remote-shell.js'
import * as pool from '../adapters/storage-pool.js'
import type { SshLogin, VmHost } from '../hosts/host-uri.js'
import { ToolError, UserError } from '../errors.js'
import { hostLabel } from '../hosts/host-uri.js'
import type { StoredImage } from '../store/images.js'
import { withBaseLock } from '../hosts/remote-lock.js'

export type RemoteHost = Required<VmHost>

export const baseVolume = (digest: string) => `base-${digest}.qcow2`
/** Made once the upload is complete and checked: a base volume without it is a partial upload. */
export const baseMarker = (digest: string) => `base-${digest}.complete`
/** A boot overlay, named for its base: an upgrade adds one, the domain XML says which is current. */
export const bootVolume = (name: string, digest: string) => `${name}.boot.${digest.slice(0, 16)}.qcow2`
export const varVolume = (name: string) => `${name}.var.raw`
/** Made once the /var filesystem is complete: a /var volume without it is a create killed mid-way (never booted). */
export const varMarker = (name: string) => `${name}.var.complete`
/**
 * Made before an upgrade stops a running VM, deleted once it runs again: the host's record that a
 * killed upgrade owes the VM a start (the next `fleet upgrade` of it finishes the job and starts it).
 */
export const upgradeRunningMarker = (name: string) => `${name}.upgrade-was-running`
export const isBootOf = (name: string, vol: string) => vol.startsWith(`${name}.boot.`) && vol.endsWith('.qcow2')

/** Where the pool lives on the host: libvirt's own image folder of the daemon the URI names. */
async function poolTarget(host: RemoteHost): Promise<string> {
  if (new URL(host.uri).pathname === '/system') return '/var/lib/libvirt/images/fleet'
  const home = (await runOn(host.ssh, ['sh', '-c', 'printf %s "$HOME"'])).stdout
  if (!home.startsWith('/')) throw new ToolError('ssh', [host.ssh.host, 'HOME'], undefined, `the remote HOME is "${home}"`)
  return `${home}/.local/share/libvirt/images/fleet`
}

const ready = new Map<string, Promise<void>>()

/** Fleet's pool on the host, defined and started on first use (once per process). */
export async function ensureHostPool(host: RemoteHost): Promise<void> {
  let p = ready.get(host.uri)
  if (!p) {
    p = poolTarget(host).then((t) => pool.ensurePool(host.uri, t))
    p.catch(() => ready.delete(host.uri))
    ready.set(host.uri, p)
  }
  return p
}

async function sha256On(login: SshLogin, path: string): Promise<string> {
  return (await runOn(login, ['sha256sum', '--', path])).stdout.split(/\s/)[0] ?? ''
}

/**
 * The base image on the host, shipped if it is not there complete: uploaded into a fresh volume,
 * its sha256 checked there, then marked. A partial upload (fleet killed mid-way) has no marker and
 * is replaced. Returns the volume and whether it was shipped now.
 */
async function shipBase(host: RemoteHost, image: StoredImage, log: (l: string) => void): Promise<{ volume: pool.Volume; shipped: boolean }> {
  await ensureHostPool(host)
  const name = baseVolume(image.digest)
  const have = await pool.volume(host.uri, name)
  if (have && (await pool.volume(host.uri, baseMarker(image.digest)))) return { volume: have, shipped: false }
  if (have) await pool.deleteVolume(host.uri, name)
  log(`Shipping base image ${image.digest.slice(0, 12)} (${Math.round(image.size / 1048576)} MiB) to ${host.ssh.host} (vol-upload)`)
  const vol = await pool.createVolume(host.uri, name, image.size, 'raw')
  await pool.upload(host.uri, name, image.path)
  const got = await sha256On(host.ssh, vol.path)
  if (got !== image.digest) {
    await pool.deleteVolume(host.uri, name)
    throw new ToolError('vol-upload', [name], undefined, `the copy on ${host.ssh.host} has sha256 ${got}, not ${image.digest}`)
  }
  await pool.createVolume(host.uri, baseMarker(image.digest), 1, 'raw')
  // A refresh lets libvirt probe the uploaded bytes as the qcow2 they are.
  await pool.refreshPool(host.uri)
  return { volume: (await pool.volume(host.uri, name))!, shipped: true }
}

/**
 * The VM's boot overlay on `image` (made unless there): a qcow2 volume backed by the base volume,
 * which is shipped first if the host lacks it. Under the base's host-side lock, so two fleet
 * processes never upload the same base at once (the second would delete the first's upload as
 * partial) and gc never deletes a base between its upload and the overlay that keeps it in use.
 */
export async function bootVolumeOn(host: RemoteHost, name: string, image: StoredImage, log: (l: string) => void): Promise<pool.Volume> {
  return withBaseLock(host.ssh, image.digest, async () => {
    await shipBase(host, image, log)
    const vol = bootVolume(name, image.digest)
    return (await pool.volume(host.uri, vol)) ?? pool.createVolume(host.uri, vol, image.virtualSize, 'qcow2', baseVolume(image.digest))
  })
}

/** The VM's volumes on the host (boot overlays, /var disk). */
export async function vmVolumes(host: RemoteHost, name: string): Promise<{ boots: string[]; var?: string; varComplete: boolean; owedStart: boolean }> {
  await ensureHostPool(host)
  const all = await pool.volumeNames(host.uri)
  return {
    boots: all.filter((v) => isBootOf(name, v)),
    ...(all.includes(varVolume(name)) ? { var: varVolume(name) } : {}),
    varComplete: all.includes(varMarker(name)),
    owedStart: all.includes(upgradeRunningMarker(name)),
  }
}

/** Digests of base volumes on the host with how many boot overlays there use each (the host's reference counts). */
export async function baseUsers(host: RemoteHost): Promise<Map<string, number>> {
  await ensureHostPool(host)
  const names = await pool.volumeNames(host.uri)
  const counts = new Map<string, number>()
  for (const n of names) {
    const m = /^base-([0-9a-f]{64})\.qcow2$/.exec(n)
    if (m) counts.set(m[1]!, 0)
  }
  for (const n of names.filter((x) => x.includes('.boot.'))) {
    const backing = (await pool.volume(host.uri, n))?.backing
    const d = backing && /base-([0-9a-f]{64})\.qcow2$/.exec(backing)?.[1]
    if (d) counts.set(d, (counts.get(d) ?? 0) + 1)
  }
  return counts
}

/** Deletes base volumes no overlay on the host uses (keeping `keep`); returns their digests. */
export async function gcHost(host: RemoteHost, keep: ReadonlySet<string>, dryRun: boolean): Promise<string[]> {
  const gone: string[] = []
  for (const [digest, users] of await baseUsers(host)) {
    if (users > 0 || keep.has(digest)) continue
    if (dryRun) {
      gone.push(digest)
      continue
    }
    // Counted again under the base's lock: a create may have backed an overlay on it meanwhile.
    const deleted = await withBaseLock(host.ssh, digest, async () => {
      if (((await baseUsers(host)).get(digest) ?? 0) > 0) return false
      // The marker first: a kill between the two leaves a partial-looking upload, replaced on next use.
      await pool.deleteVolume(host.uri, baseMarker(digest))
      await pool.deleteVolume(host.uri, baseVolume(digest))
      return true
    })
    if (deleted) gone.push(digest)
  }
  return gone
}

/**
 * The error of a step on the host that ran out of space there (vol-upload, mkfs.ext4, debugfs,
 * qemu-img: "No space left on device"), as one naming the machine and the host (exit 2: free space
 * and run it again); undefined for any other error.
 */
export function hostFull(e: unknown, name: string, host: RemoteHost): UserError | undefined {
  if (!(e instanceof ToolError) || !/No space left on device|ENOSPC/i.test(e.stderr)) return undefined
  const what = e.stderr.trim().split('\n').filter((l) => /No space left|ENOSPC/i.test(l)).at(-1)!.trim()
  return new UserError(`machine ${name}: no space left on ${hostLabel(host)} (${e.tool}: ${what})`,
    `Free space on ${host.ssh.host} where fleet's storage pool lives (\`virsh -c '${host.uri}' pool-info fleet\`), then run the command again.`, { cause: e })
}

