// The new-machine inputs: every prompt has a flag, prompts and flags share one check, and where
// values come from without a terminal.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import CreateVm from '../../src/commands/create-vm.js'
import { DEFAULTS } from '../../src/machines/model.js'
import { defaultSpec, FIELDS, flagsFor, parseAnswer, shellWords, type Field, type FieldKey, type NewMachineSpec } from '../../src/machines/fields.js'
import { validateFields, type HostFacts } from '../../src/machines/spec-checks.js'
import * as v from '../../src/machines/validate.js'
import { canPrompt, validator } from '../../src/prompts/new-machine.js'
import { statePaths } from '../../src/repo.js'
import { resolveNewMachineSpec, specFromFlags, type AskNewMachine } from '../../src/services/new-machine-spec.js'

const host: HostFacts = { totalMemory: 8 * 1024 ** 3, networks: ['default'] }
const QUESTIONS = (FIELDS as readonly Field[]).filter((f) => f.prompt)
const q = (key: FieldKey) => (FIELDS as readonly Field[]).find((x) => x.key === key)!

describe('one field table gives the flags and the prompts', () => {
  const flags = Object.keys(CreateVm.flags)
  it('every field of a new machine is a row, and every row is a create-vm flag', () => {
    expect((FIELDS as readonly Field[]).map((f) => f.key).sort()).toEqual(Object.keys(defaultSpec()).sort())
    for (const f of FIELDS) expect(flags).toContain(f.flag)
  })
  it('asks for every setting of a new machine except the architecture (a flag only)', () => {
    const asked = QUESTIONS.map((x) => x.key as string)
    expect(Object.keys(defaultSpec()).filter((k) => !asked.includes(k))).toEqual(['arch'])
  })
  it('the channel is --channel, as in build and image import; --base stays accepted', () => {
    expect(CreateVm.flags.channel?.aliases).toEqual(['base'])
  })
})

describe('a prompt refuses exactly what the flag refuses, with the same message', () => {
  const cases: [FieldKey, string][] = [
    ['memory', 'lots'], ['memory', '32M'], ['memory', '9G'], ['vcpus', 'two'], ['vcpus', '0'], ['varSize', '1K'],
    ['base', 'Bad Channel'], ['dns', '1.1.1.1, dns.example'], ['hosts', '10.0.0.5'], ['tcpPorts', '22 22'], ['udpPorts', '0'],
  ]
  it.each(cases)('%s %j', async (key, text) => {
    const promptSays = await validator(q(key), host)(text)
    expect(promptSays).toEqual(expect.any(String))
    await expect(validateFields('web1', { [key]: parseAnswer(q(key), text) }, host)).rejects.toThrow(`machine web1: ${promptSays as string}`)
  })
  it('network: a choice from the host, user or none', async () => {
    for (const n of ['default', 'user', 'none']) expect(await validator(q('network'), host)(n)).toBe(true)
    expect(await validator(q('network'), host)('lan')).toMatch(/network "lan" is not a libvirt network on this host \(it has: default, user, none\)/)
  })
  it.each(['512M', '2G', '1.5G'])('accepts memory %s', async (m) => expect(await validator(q('memory'), host)(m)).toBe(true))
})

describe('answers and flags as values', () => {
  it('reads lists, "none", and comma-separated hosts lines', () => {
    expect(parseAnswer(q('tcpPorts'), '22, 80 443')).toEqual(['22', '80', '443'])
    expect(parseAnswer(q('dns'), 'none')).toEqual([])
    expect(parseAnswer(q('udpPorts'), '')).toEqual([])
    expect(parseAnswer(q('hosts'), '10.0.0.5 db, 10.0.0.6 cache cache.lan')).toEqual(['10.0.0.5 db', '10.0.0.6 cache cache.lan'])
  })
  it('shows the flags that give a spec, as one would type them, and they read back to the same spec', async () => {
    const spec: NewMachineSpec = { ...defaultSpec(), memory: '2G', dns: [], hosts: ['10.0.0.5 db'], tcpPorts: ['22', '443'], adminKeys: ["ssh-ed25519 AAAA it's"] }
    const argv = flagsFor(spec, defaultSpec())
    expect(shellWords(['web1', ...argv])).toBe(`web1 --memory 2G --vcpus ${DEFAULTS.vcpus} --var-size ${DEFAULTS.varSize} --channel ${DEFAULTS.base} --network ${DEFAULTS.network} --dns none --host '10.0.0.5 db' --tcp-ports 22,443 --admin-key 'ssh-ed25519 AAAA it'\\''s'`)
    const flags: Record<string, string | string[]> = {}
    for (let i = 0; i < argv.length; i += 2) {
      const [k, val] = [argv[i]!.slice(2), argv[i + 1]!]
      flags[k] = ['host', 'admin-key', 'user-key'].includes(k) ? [...((flags[k] as string[] | undefined) ?? []), val] : val
    }
    expect({ ...defaultSpec(), ...(await specFromFlags(flags)) }).toEqual({ ...spec, vcpus: String(DEFAULTS.vcpus) })
  })
  it('never prompts under a CI system, whatever the terminal', () => {
    expect(canPrompt({ CI: 'true' })).toBe(false)
    expect(canPrompt({ CI: '1' })).toBe(false)
  })
  it('leaves out what the flags did not give', async () => {
    expect(await specFromFlags({ memory: '1G', 'tcp-ports': '22,80', host: ['10.0.0.5 db'] })).toEqual({ memory: '1G', tcpPorts: ['22', '80'], hosts: ['10.0.0.5 db'] })
  })
})

describe('where a new machine\'s values come from', () => {
  const paths = statePaths(mkdtempSync(join(tmpdir(), 'fleet-unit-')), mkdtempSync(join(tmpdir(), 'fleet-unit-')))
  const hardware = { memory: '1G', vcpus: '2', varSize: '2G', base: 'base', network: 'none' }
  afterAll(() => [paths.repo, paths.state].forEach((d) => rmSync(d, { recursive: true, force: true })))
  const never: AskNewMachine = () => {
    throw new Error('asked')
  }

  it('without a terminal and without --yes: an error listing the missing hardware flags and their defaults', async () => {
    await expect(resolveNewMachineSpec(paths, 'web1', { given: { memory: '1G' }, yes: false }, host))
      .rejects.toThrow(`machine web1: machines/web1 does not exist and there is no terminal to ask on; missing --vcpus (default ${DEFAULTS.vcpus}), --var-size (default ${DEFAULTS.varSize}), --channel (default ${DEFAULTS.base}), --network (default ${DEFAULTS.network})`)
  })
  it('without a terminal, the hardware flags are enough; the rest default', async () => {
    expect(await resolveNewMachineSpec(paths, 'web1', { given: hardware, yes: false }, host)).toEqual({ ...defaultSpec(), ...hardware })
  })
  it('--yes takes the defaults and never asks', async () => {
    expect(await resolveNewMachineSpec(paths, 'web1', { given: { memory: '1G' }, yes: true, ask: never }, host)).toEqual({ ...defaultSpec(), memory: '1G' })
  })
  it('at a terminal, asks with what was given, the defaults and what the host offers', async () => {
    let seen: Parameters<AskNewMachine> | undefined
    const ask: AskNewMachine = async (...a) => {
      seen = a
      return { ...a[2], ...a[1] } as NewMachineSpec
    }
    await resolveNewMachineSpec(paths, 'web1', { given: { memory: '1G' }, yes: false, ask }, host)
    expect(seen![0]).toBe('web1')
    expect(seen![1]).toEqual({ memory: '1G' })
    expect(seen![2]).toEqual(defaultSpec())
    expect(seen![3]).toMatchObject({ host, channels: [], storeDir: paths.images })
  })
})

describe('host and fleet checks', () => {
  it('memory must fit the host', () => {
    expect(v.checkMemoryFits('8G', 8 * 1024 ** 3)).toBeUndefined()
    expect(v.checkMemoryFits('9G', 8 * 1024 ** 3)).toBe('memory "9G" is more than this host has (8192M)')
  })
  it('hosts lines are "ADDRESS NAME..."', () => {
    expect(v.checkHostsLine('10.0.0.5 db db.lan')).toBeUndefined()
    expect(v.checkHostsLine('fe80::1 router')).toBeUndefined()
    expect(v.checkHostsLine('db 10.0.0.5')).toContain('address "db"')
    expect(v.checkHostsLine('10.0.0.5')).toContain('"10.0.0.5"')
  })
  const m = (name: string, mac: string, uuid: string, sshPort?: number) => ({ name, dir: `/r/machines/${name}`, mac, uuid, sshPort })
  it('no two machines share a MAC, UUID or SSH forward port; the error names both', () => {
    expect(() => v.checkFleetUnique([m('a', '52:54:00:00:00:01', 'u1', 2200), m('b', '52:54:00:00:00:02', 'u2', 2201)])).not.toThrow()
    expect(() => v.checkFleetUnique([m('a', '52:54:00:00:00:01', 'u1'), m('b', '52:54:00:00:00:01', 'u2')])).toThrow('machine b: mac "52:54:00:00:00:01" is also used by machine a')
    expect(() => v.checkFleetUnique([m('a', '52:54:00:00:00:01', 'u1'), m('b', '52:54:00:00:00:02', 'u1')])).toThrow('machine b: uuid "u1" is also used by machine a')
    expect(() => v.checkFleetUnique([m('a', '52:54:00:00:00:01', 'u1', 2200), m('b', '52:54:00:00:00:02', 'u2', 2200)])).toThrow('machine b: sshPort "2200" is also used by machine a')
  })
})
