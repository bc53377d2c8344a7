// Bad flags and arguments: exit 2 with a short message, also under --json.
import { describe, expect, it } from 'vitest'
import { rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { blankImage, fleet, sandbox } from '../helpers/fleet.js'

const sb = sandbox()

describe('usage errors', () => {
  it('a bad flag under --json is one short JSON error, exit 2', async () => {
    const r = await fleet(sb, ['list', '--json', '--bogus'])
    expect(r.code).toBe(2)
    expect(r.stdout.length).toBeLessThan(1000)
    expect(JSON.parse(r.stdout)).toEqual({ error: { type: 'UsageError', code: 2, message: expect.stringContaining('Nonexistent flag: --bogus'), hint: 'fleet list --help' } })
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
  it('a mistyped command names the closest one, exit 2', async () => {
    const r = await fleet(sb, ['creat-vm', 'web1'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Did you mean `fleet create-vm`?')
    const sub = await fleet(sb, ['image', 'imprt', 'x.qcow2'])
    expect(sub.stderr).toContain('Did you mean `fleet image import`?')
    const none = await fleet(sb, ['xyzzy'])
    expect(none.code).toBe(2)
    expect(none.stderr).not.toContain('Did you mean')
  })
  it('fleet help COMMAND and COMMAND -h show that command\'s help', async () => {
    for (const args of [['help', 'create-vm'], ['create-vm', '-h'], ['create-vm', '--help']]) {
      const r = await fleet(sb, args)
      expect(r.code, args.join(' ')).toBe(0)
      expect(r.stdout, args.join(' ')).toContain('$ fleet create-vm NAME')
    }
    expect((await fleet(sb, ['help', 'image', 'import'])).stdout).toContain('$ fleet image import FILE')
  })
  it('a state directory fleet makes itself is one qemu can pass through (its private folders are inside)', async () => {
    const own = sandbox()
    rmSync(own.state, { recursive: true, force: true })
    await blankImage(join(own.dir, 'base.qcow2'))
    const r = await fleet(own, ['image', 'import', join(own.dir, 'base.qcow2'), '--name', 'base'])
    expect(r.code, r.stderr).toBe(0)
    expect(statSync(own.state).mode & 0o001, 'others may enter the state directory').toBe(0o001)
    expect(statSync(join(own.state, 'locks')).mode & 0o077).toBe(0)
    own.cleanup()
  })
})
