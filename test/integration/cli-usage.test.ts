// Bad flags and arguments: exit 2 with a short message, also under --json.
import { describe, expect, it } from 'vitest'
import { fleet, sandbox } from '../helpers/fleet.js'

const sb = sandbox()

describe('usage errors', () => {
  it('a bad flag under --json is one short JSON error, exit 2', async () => {
    const r = await fleet(sb, ['list', '--json', '--bogus'])
    expect(r.code).toBe(2)
    expect(r.stdout.length).toBeLessThan(1000)
    expect(JSON.parse(r.stdout)).toEqual({ error: { type: 'UsageError', message: expect.stringContaining('Nonexistent flag: --bogus'), hint: 'fleet list --help' } })
  })
  it('a missing argument under --json names it, exit 2', async () => {
    const r = await fleet(sb, ['destroy-vm', '--json'])
    expect(r.code).toBe(2)
    expect((JSON.parse(r.stdout) as { error: { message: string } }).error.message).toMatch(/Missing 1 required arg: name/)
  })
  it('without --json: exit 2 and the usage on stderr', async () => {
    const r = await fleet(sb, ['list', '--bogus'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Nonexistent flag: --bogus')
  })
})
