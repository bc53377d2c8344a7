// The ustar writer against GNU tar: names, modes, owners, sizes and bytes survive a round trip.
import { execa } from 'execa'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tarHeader, tarPadding, ustar } from '../../src/services/ustar.js'

describe('ustar', () => {
  it('is read back by tar with the modes, owners and bytes it was given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-ustar-'))
    try {
      const big = Buffer.from(Array.from({ length: 1500 }, (_, i) => i % 256))
      const tar = ustar([
        { name: 'identity.new/', mode: 0o755 },
        { name: 'identity.new/ssh_host_ed25519_key', mode: 0o600, data: Buffer.from('KEY\n') },
        { name: 'identity.new/udp_ports', mode: 0o644, data: Buffer.alloc(0) },
        { name: 'identity.new/blob', mode: 0o644, uid: 1000, gid: 100, data: big },
      ], 1_700_000_000)
      expect(tar.length % 512).toBe(0)
      writeFileSync(join(dir, 'a.tar'), tar)
      const listing = String((await execa('tar', ['--numeric-owner', '--utc', '-tvf', join(dir, 'a.tar')])).stdout).split('\n')
      expect(listing.map((l) => l.split(/\s+/).slice(0, 3).concat(l.split(/\s+/).at(-1)!).join(' '))).toEqual([
        'drwxr-xr-x 0/0 0 identity.new/',
        '-rw------- 0/0 4 identity.new/ssh_host_ed25519_key',
        '-rw-r--r-- 0/0 0 identity.new/udp_ports',
        '-rw-r--r-- 1000/100 1500 identity.new/blob',
      ])
      expect(listing[0]).toContain('2023-11-14 22:13')
      const out = join(dir, 'out')
      mkdirSync(out)
      await execa('tar', ['-xpf', join(dir, 'a.tar'), '-C', out])
      expect(readFileSync(join(out, 'identity.new/blob')).equals(big)).toBe(true)
      expect(statSync(join(out, 'identity.new/ssh_host_ed25519_key')).mode & 0o777).toBe(0o600)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('refuses a name longer than the 100 bytes ustar holds', () => {
    expect(() => ustar([{ name: 'x'.repeat(101), mode: 0o644 }])).toThrow(/100 bytes/)
  })
})

describe('tarHeader sizes', () => {
  it('writes octal up to 8 GiB - 1 and base-256 above (a multi-GB qcow2 in an OCI layer)', () => {
    const small = tarHeader({ name: 'disk/a.qcow2', mode: 0o444, uid: 107, gid: 107 }, 8 ** 11 - 1, 0)
    expect(small.subarray(124, 136).toString('ascii')).toBe('77777777777\0')
    const size = 9 * 1024 ** 3 + 5
    const big = tarHeader({ name: 'disk/a.qcow2', mode: 0o444, uid: 107, gid: 107 }, size, 0)
    expect(big[124]).toBe(0x80)
    let v = 0n
    for (let i = 125; i < 136; i++) v = (v << 8n) | BigInt(big[i]!)
    expect(Number(v)).toBe(size)
    // The checksum still covers the header as tar computes it (the size bytes as they are).
    let sum = 0
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : big[i]!
    expect(parseInt(big.subarray(148, 155).toString('ascii'), 8)).toBe(sum)
    expect(tarPadding(size)).toHaveLength(512 - (size % 512))
  })
})
