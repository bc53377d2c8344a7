// --health values: the four kinds, and clear refusals (exit 2) for anything else.
import { describe, expect, it } from 'vitest'
import { UserError } from '../../src/errors.js'
import { describeHealth, parseHealth } from '../../src/services/health.js'

describe('parseHealth', () => {
  it('reads agent, ssh, none and console:REGEX (matched per line)', () => {
    expect(parseHealth('agent')).toEqual({ kind: 'agent' })
    expect(parseHealth('ssh')).toEqual({ kind: 'ssh' })
    expect(parseHealth('none')).toEqual({ kind: 'none' })
    const c = parseHealth('console:^ready: (web|db)$')
    expect(c.kind).toBe('console')
    if (c.kind !== 'console') return
    expect(c.pattern.test('boot…\nready: web\nmore')).toBe(true)
    expect(c.pattern.test('not ready: web')).toBe(false)
    expect(describeHealth(c)).toBe('console:^ready: (web|db)$')
  })
  it('refuses other values, an empty or invalid pattern, naming the value', () => {
    for (const [bad, says] of [['ping', '"ping"'], ['console:', 'console:'], ['console:(', '"console:("'], ['Agent', '"Agent"']]) {
      expect(() => parseHealth(bad!), bad).toThrow(UserError)
      expect(() => parseHealth(bad!), bad).toThrow(says)
    }
  })
})
