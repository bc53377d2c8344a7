// The mkfs.ext4 -d fast path must give the same /var disk as the guestfish appliance.
import { mkdirSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createVarDisk, resyncIdentity } from '../../src/services/var-disk.js'
import { sandbox } from '../helpers/fleet.js'
import { readVarDisks } from '../helpers/var-disk.js'

describe('new /var disk: mkfs fast path vs guestfish', () => {
  it('writes identical files, modes, owners and label', async () => {
    process.env.LIBGUESTFS_BACKEND_SETTINGS ??= 'force_tcg'
    const sb = sandbox()
    const identity = new Map<string, Buffer>([
      ['machine-id', Buffer.from('0123456789abcdef0123456789abcdef\n')],
      ['hostname', Buffer.from('web1\n')],
      ['ssh_host_ed25519_key', Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n')],
      ['ssh_host_ed25519_key.pub', Buffer.from('ssh-ed25519 AAAA root@web1\n')],
      ['hosts', Buffer.from('127.0.1.1 web1\n10.0.0.5 db\n')],
      ['tcp_ports', Buffer.from('22\n443\n')],
      ['udp_ports', Buffer.from('')],
    ])
    // Staging happens only inside the caller's 0700 tmpDir, which is empty again afterwards.
    const tmp = join(sb.dir, 'tmp')
    mkdirSync(tmp, { mode: 0o700 })
    const fast = join(sb.dir, 'fast.qcow2')
    const slow = join(sb.dir, 'slow.qcow2')
    let t0 = performance.now()
    await createVarDisk(fast, 256 * 1024 ** 2, identity, 'mkfs', tmp)
    const fastMs = performance.now() - t0
    t0 = performance.now()
    await createVarDisk(slow, 256 * 1024 ** 2, identity, 'guestfish', tmp)
    const slowMs = performance.now() - t0
    console.log(`new /var disk: mkfs.ext4 -d ${Math.round(fastMs)} ms, guestfish ${Math.round(slowMs)} ms`)
    expect(readdirSync(tmp)).toEqual([])
    // The disk holds the SSH host private key: owner-only from the start.
    expect(statSync(fast).mode & 0o777).toBe(0o600)
    expect(statSync(slow).mode & 0o777).toBe(0o600)
    const [a, b] = await readVarDisks([fast, slow])
    expect(a!.label).toBe('var')
    expect(a!.files['/identity/ssh_host_ed25519_key']).toMatchObject({ mode: '600', uid: 0, gid: 0 })
    expect(a!.files['/identity/hosts']!.content).toBe('127.0.1.1 web1\n10.0.0.5 db\n')
    expect(a).toEqual(b)
    sb.cleanup()
  }, 240_000)
})

describe('identity sync onto an existing /var: appliance-free (e2fs) vs guestfish', () => {
  it('leaves the same tree (paths, bytes, modes, owners); guestfish is the fallback when the tools are missing, and says so', async () => {
    process.env.LIBGUESTFS_BACKEND_SETTINGS ??= 'force_tcg'
    const sb = sandbox()
    const tmp = join(sb.dir, 'tmp')
    mkdirSync(tmp, { mode: 0o700 })
    const old = new Map<string, Buffer>([
      ['machine-id', Buffer.from('0123456789abcdef0123456789abcdef\n')],
      ['hostname', Buffer.from('web1\n')],
      ['ssh_host_ed25519_key', Buffer.from('old-secret\n')],
      ['tcp_ports', Buffer.from('22\n')],
    ])
    // Changed, added and removed files; an empty one; the private key stays 0600.
    const next = new Map<string, Buffer>([
      ['machine-id', Buffer.from('fedcba9876543210fedcba9876543210\n')],
      ['hostname', Buffer.from('web2\n')],
      ['ssh_host_ed25519_key', Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\nnew\n-----END OPENSSH PRIVATE KEY-----\n')],
      ['ssh_host_ed25519_key.pub', Buffer.from('ssh-ed25519 AAAA root@web2\n')],
      ['hosts', Buffer.from('127.0.1.1 web2\n')],
      ['udp_ports', Buffer.from('')],
    ])
    const e2 = join(sb.dir, 'e2.qcow2')
    const gf = join(sb.dir, 'gf.qcow2')
    for (const f of [e2, gf]) await createVarDisk(f, 64 * 1024 ** 2, old, 'mkfs', tmp)
    const said: string[] = []
    let t0 = performance.now()
    expect(await resyncIdentity([{ file: e2, identity: next }], tmp, (l) => said.push(l))).toBe('e2fs')
    const e2Ms = performance.now() - t0
    const saved = process.env.QEMU_STORAGE_DAEMON
    process.env.QEMU_STORAGE_DAEMON = join(sb.dir, 'no-such-qemu-storage-daemon')
    try {
      t0 = performance.now()
      expect(await resyncIdentity([{ file: gf, identity: next }], tmp, (l) => said.push(l))).toBe('guestfish')
    } finally {
      if (saved === undefined) delete process.env.QEMU_STORAGE_DAEMON
      else process.env.QEMU_STORAGE_DAEMON = saved
    }
    const gfMs = performance.now() - t0
    console.log(`identity sync: e2fs ${Math.round(e2Ms)} ms, guestfish ${Math.round(gfMs)} ms`)
    expect(said[0]).toMatch(/e2fs/)
    expect(said[1]).toMatch(/guestfish.*no-such-qemu-storage-daemon is not installed/)
    expect(readdirSync(tmp)).toEqual([])
    const [a, b] = await readVarDisks([e2, gf])
    expect(a!.files['/identity/ssh_host_ed25519_key']).toMatchObject({ mode: '600', uid: 0, gid: 0 })
    expect(a!.files['/identity/hosts']).toMatchObject({ mode: '644', uid: 0, gid: 0, content: '127.0.1.1 web2\n' })
    expect(Object.keys(a!.files).filter((p) => p.startsWith('/identity/')).sort()).toEqual([...next.keys()].map((n) => `/identity/${n}`).sort())
    expect(a!.dirs).not.toContain('/identity.new')
    expect(a).toEqual(b)
    sb.cleanup()
  }, 240_000)
})
