import { describe, expect, it } from 'vitest'
import * as v from '../../src/machines/validate.js'

const good = { memory: '512M', vcpus: 1, varSize: '1G', network: 'none', mac: '52:54:00:12:34:56', uuid: '5b971591-46ab-4716-a6a6-04212898b39e', arch: 'x86_64', base: 'base' }

describe('field checks', () => {
  it.each(['web1', 'a', 'db-2', 'x'.repeat(63)])('accepts name %s', (n) => expect(v.checkName(n)).toBeUndefined())
  it.each(['', '-web', 'web-', 'Web1', 'web_1', 'x'.repeat(64), 'a.b'])('refuses name %j naming it', (n) => expect(v.checkName(n)).toContain(`"${n}"`))
  it.each(['32M', '5T', 'lots', '1.5M'])('refuses memory %s', (m) => expect(v.checkMemory(m)).toContain(m))
  it.each([0, 513, '1.5', 'two'])('refuses vcpus %s', (n) => expect(v.checkVcpus(n)).toContain(String(n)))
  it('refuses duplicate and out-of-range ports', () => {
    expect(v.checkPorts('tcp', ['22', '22'])).toMatch(/tcp port 22 is listed twice/)
    expect(v.checkPorts('udp', ['0'])).toMatch(/udp port "0"/)
    expect(v.checkPorts('tcp', ['65536'])).toMatch(/65536/)
    expect(v.checkPorts('tcp', ['22', '80', '443'])).toBeUndefined()
  })
  it('checks DNS servers are IPs', () => {
    expect(v.checkDns('9.9.9.9')).toBeUndefined()
    expect(v.checkDns('2620:fe::fe')).toBeUndefined()
    expect(v.checkDns('dns.example')).toContain('dns.example')
  })
  it('checks MAC and UUID shapes', () => {
    expect(v.checkMac('52:54:00:ab:cd:ef')).toBeUndefined()
    expect(v.checkMac('00:11:22:33:44:55')).toContain('00:11:22:33:44:55')
    expect(v.checkUuid('not-a-uuid')).toContain('not-a-uuid')
  })
})

describe('machine.json', () => {
  it('accepts a complete definition', () => {
    expect(v.validateMachineJson('web1', 'm.json', good)).toEqual(good)
  })
  it('reports an unknown field with file and field', () => {
    expect(() => v.validateMachineJson('web1', '/r/machines/web1/machine.json', { ...good, memroy: '1G' }))
      .toThrow(/machine web1: \/r\/machines\/web1\/machine.json: unknown field "memroy"/)
  })
  it.each([
    ['memory', '12Q'], ['varSize', '1K'], ['mac', 'zz'], ['uuid', 'x'], ['arch', 'riscv64'], ['base', 'Bad Channel'], ['network', 'a b'],
  ])('names bad %s %j', (field, value) => {
    expect(() => v.validateMachineJson('web1', 'm.json', { ...good, [field]: value })).toThrow(new RegExp(`machine web1: m.json: .*${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
  })
  it('needs vcpus as a number', () => {
    expect(() => v.validateMachineJson('web1', 'm.json', { ...good, vcpus: '2' })).toThrow(/vcpus/)
  })
})
