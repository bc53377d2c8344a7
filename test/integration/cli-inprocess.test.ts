// Every command driven in-process through oclif's test helper (runCommand on the built CLI and
// its manifest): help with examples, a suggestion for a mistyped command, bad input as a short
// JSON error with exit code 2, --json only where a command can produce JSON, --connect.
import { runCommand } from '@oclif/test'
import { Config } from '@oclif/core'
import { Console } from 'node:console'
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../helpers/fleet.js'

const dir = mkdtempSync(join(tmpdir(), 'fleet-test-'))
const saved = { ...process.env }
let ids: string[] = []
let noJson: string[] = []
const run = (args: string[]) => runCommand(args, { root: ROOT })
const exitOf = (r: { error?: { oclif?: { exit?: number } } }) => r.error?.oclif?.exit ?? 0

const vitestConsole = globalThis.console
beforeAll(async () => {
  // oclif prints help and --json results with console.log, which vitest intercepts: a plain
  // console writes through process.stdout.write, where runCommand captures it.
  globalThis.console = new Console({ stdout: process.stdout, stderr: process.stderr })
  mkdirSync(join(dir, 'repo', 'machines'), { recursive: true })
  Object.assign(process.env, { FLEET_REPO: join(dir, 'repo'), FLEET_STATE_DIR: join(dir, 'state') })
  delete process.env.LIBVIRT_URI
  const config = await Config.load(ROOT)
  ids = config.commands.filter((c) => !c.hidden && c.pluginName === 'fleet').map((c) => c.id)
  noJson = config.commands.filter((c) => c.pluginName === 'fleet' && !c.flags.json).map((c) => c.id)
})
afterAll(() => {
  globalThis.console = vitestConsole
  process.env = saved
  rmSync(dir, { recursive: true, force: true })
})

describe('every command, in-process', () => {
  it('finds fleet\'s commands (every file in src/commands) plus help and autocomplete from their plugins', async () => {
    const files = readdirSync(join(ROOT, 'src', 'commands'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3).replaceAll('/', ':'))
    expect([...ids].sort()).toEqual(files.sort())
    const config = await Config.load(ROOT)
    expect(config.commands.map((c) => c.id)).toEqual(expect.arrayContaining(['help', 'autocomplete']))
  })

  it('--help and `help COMMAND`: usage, at least one example, exit 0', async () => {
    for (const id of ids) {
      const words = id.split(':')
      for (const args of [[...words, '--help'], ['help', ...words]]) {
        const r = await run(args)
        expect(exitOf(r), args.join(' ')).toBe(0)
        expect(r.stdout, args.join(' ')).toContain(`$ fleet ${words.join(' ')}`)
        expect(r.stdout, args.join(' ')).toMatch(/\nEXAMPLES\n {2}\$ fleet /)
      }
    }
  })

  it('a bad flag: exit 2; under --json one short JSON error {type, code, message, hint}', async () => {
    for (const id of ids) {
      const words = id.split(':')
      const plain = await run([...words, '--bogus-flag'])
      expect(exitOf(plain), id).toBe(2)
      if (noJson.includes(id)) continue
      const r = await run([...words, '--bogus-flag', '--json'])
      expect(exitOf(r), id).toBe(2)
      expect(r.stdout.length, id).toBeLessThan(600)
      expect(JSON.parse(r.stdout), id).toEqual({ error: { type: 'UsageError', code: 2, message: expect.stringContaining('--bogus-flag'), hint: `fleet ${words.join(' ')} --help` } })
    }
  })

  it('a command that needs a machine name: exit 2 without it, and for a name that is no hostname label', async () => {
    for (const id of ['create-vm', 'define-vm', 'start-vm', 'stop-vm', 'destroy-vm', 'rollback', 'console', 'ssh']) {
      expect(exitOf(await run([id])), id).toBe(2)
      const r = await run([id, '../etc'])
      expect(exitOf(r), id).toBe(2)
      expect(r.stderr, id).toContain('machine ../etc')
    }
  })

  it('commands that cannot produce JSON do not offer --json', async () => {
    expect(noJson).toContain('ssh')
    const r = await run(['ssh', 'web1', '--json'])
    expect((await run(['ssh', '--help'])).stdout).not.toContain('--json')
    expect(exitOf(r)).toBe(2)
  })

  it('a mistyped command names the closest one, exit 2; under --json as a JSON error', async () => {
    const r = await run(['creat-vm', 'web1'])
    expect(exitOf(r)).toBe(2)
    expect(r.stderr).toContain('Did you mean `fleet create-vm`?')
    const j = await run(['destry-vm', 'web1', '--json'])
    expect(exitOf(j)).toBe(2)
    expect(JSON.parse(j.stdout)).toMatchObject({ error: { code: 2, message: expect.stringContaining('Did you mean `fleet destroy-vm`?') } })
  })

  it('cheap commands run and exit 0 with JSON results', async () => {
    for (const args of [['list'], ['image', 'list'], ['gc', '--dry-run'], ['repair', '--dry-run'], ['build-libvirt-xml', '--dry-run']]) {
      const r = await run([...args, '--json'])
      expect(exitOf(r), `${args.join(' ')}: ${r.stderr}`).toBe(0)
      expect(() => JSON.parse(r.stdout), args.join(' ')).not.toThrow()
    }
  })

  it('--connect wins over LIBVIRT_DEFAULT_URI, as virsh -c does', async () => {
    process.env.LIBVIRT_DEFAULT_URI = 'qemu:///system'
    const r = await run(['doctor', '--json', '--connect', 'test:///default'])
    const libvirt = (JSON.parse(r.stdout) as { checks: { name: string; detail: string }[] }).checks.find((c) => c.name === 'libvirt')
    expect(libvirt?.detail).toMatch(/^test:\/\/\/default: connected/)
  })
})
