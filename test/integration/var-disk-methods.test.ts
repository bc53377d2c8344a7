// The mkfs.ext4 -d fast path must give the same /var disk as the guestfish appliance.
import { mkdirSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createVarDisk } from '../../src/services/var-disk.js'
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
