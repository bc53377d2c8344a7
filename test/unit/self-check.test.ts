// The host's side of the self-check line (docs/guest-contract.md, "Verification"): the guest
// reports facts, and every field must match the throwaway identity.
import { describe, expect, it } from 'vitest'
import { parseSelfCheck, selfCheckProblems } from '../../src/services/verify-image.js'
import { verifyDomainName } from '../../src/ops/verify-domain.js'
import { checkName } from '../../src/machines/validate.js'

const want = { machineId: 'a'.repeat(32), hostKey: 'AAAAC3NzaC1lZDI1NTE5AAAAIKey' }
const line = (over: Record<string, string> = {}) =>
  Object.entries({ 'machine-id': want.machineId, root: 'ro', var: 'var', hostkey: want.hostKey, ...over }).map(([k, v]) => `${k}=${v}`).join(' ')

describe('self-check line', () => {
  it('accepts a line that matches the identity in every field', () => {
    expect(selfCheckProblems(parseSelfCheck(line()), want)).toEqual([])
  })

  it.each([
    [{ 'machine-id': 'b'.repeat(32) }, /machine-id is b{32}, not the identity's a{32}/],
    [{ 'machine-id': 'none' }, /machine-id is none/],
    [{ root: 'rw' }, /\/ is writable, not read-only/],
    [{ var: 'none' }, /\/var is not a labelled disk/],
    [{ var: 'data' }, /\/var is labelled data, not the disk labelled var/],
    [{ hostkey: 'none' }, /host key is missing or unusable/],
    [{ hostkey: 'AAAAother' }, /host key is not the identity's/],
  ])('refuses %o', (over, message) => {
    const problems = selfCheckProblems(parseSelfCheck(line(over)), want)
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(message)
  })

  it('a line missing fields fails on each of them; keys are data, not prototype names', () => {
    expect(selfCheckProblems(parseSelfCheck('constructor=x'), want)).toHaveLength(4)
  })

  it('the throwaway domain name can never be a machine name', () => {
    const name = verifyDomainName('0123abcd-0000-4000-8000-000000000000', '/state/verify/verify-AbC123')
    expect(name).toBe('fleet-verify.0123abcd.verify-AbC123')
    expect(checkName(name)).toBeDefined()
  })
})
