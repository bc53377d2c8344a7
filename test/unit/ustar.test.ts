// The ustar writer against GNU tar: names, modes, owners, sizes and bytes survive a round trip.
import { execa } from 'execa'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ustar } from '../../src/services/ustar.js'

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
