import { describe, expect, it } from 'vitest'
import { allocateMac, allocateSshPort, allocateUuid } from '../../src/machines/allocate.js'

describe('allocation', () => {
  it('gives a stable 52:54:00 MAC per name', () => {
    const a = allocateMac('web1', new Set())
    expect(a).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/)
    expect(allocateMac('web1', new Set())).toBe(a)
    expect(allocateMac('web2', new Set())).not.toBe(a)
  })
  it('steps past MACs already taken in the fleet', () => {
    const a = allocateMac('web1', new Set())
    const b = allocateMac('web1', new Set([a]))
    expect(b).not.toBe(a)
    expect(b).toMatch(/^52:54:00/)
  })
  it('gives unique UUIDs and free ports', () => {
    const u = allocateUuid(new Set())
    expect(u).toMatch(/^[0-9a-f-]{36}$/)
    expect(allocateSshPort(new Set([2200, 2201]))).toBe(2202)
  })
})
