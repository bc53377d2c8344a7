import { describe, expect, it } from 'vitest'
import { allocateMac, allocateSshPort, allocateUuid, listeningIn } from '../../src/machines/allocate.js'

describe('allocation', () => {
  it('gives a random 52:54:00 MAC, different on every call (the same name in two fleets)', () => {
    const macs = new Set(Array.from({ length: 50 }, () => allocateMac(new Set())))
    for (const m of macs) expect(m).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/)
    expect(macs.size).toBeGreaterThan(45)
  })
  it('draws again while the MAC is taken in the fleet or on the host', () => {
    const draws = [Buffer.from([1, 2, 3]), Buffer.from([1, 2, 3]), Buffer.from([0xab, 0xcd, 0xef])]
    const mac = allocateMac(new Set(['52:54:00:01:02:03']), () => draws.shift()!)
    expect(mac).toBe('52:54:00:ab:cd:ef')
    expect(draws).toEqual([])
  })
  it('gives unique UUIDs and free ports', () => {
    const u = allocateUuid(new Set())
    expect(u).toMatch(/^[0-9a-f-]{36}$/)
    expect(allocateSshPort(new Set([2200, 2201]))).toBe(2202)
  })
  it('reads the listening ports from /proc/net/tcp and tcp6 text as one remote `cat` prints it', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:0898 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1',
      '   1: 0100007F:0899 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 2 1',
      '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1',
      '',
    ].join('\n')
    // 0x0898 = 2200 listening, 0x0899 = 2201 only an established connection, 0x16 = 22 on IPv6.
    expect([...listeningIn(text)].sort((a, b) => a - b)).toEqual([22, 2200])
    expect(allocateSshPort(listeningIn(text))).toBe(2201)
  })
})
