import { describe, expect, it } from 'vitest'
import { allocateMac, allocateSshPort, allocateUuid } from '../../src/machines/allocate.js'

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
})
