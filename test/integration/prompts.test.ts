// create-vm's prompts, driven for real through a pseudo-terminal (tmux): every question answered,
// refused answers re-asked, the summary confirmed, and the machine really created.
import { execa } from 'execa'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULTS } from '../../src/machines/model.js'
import { defaultSpec, flagsFor, shellWords, type NewMachineSpec } from '../../src/machines/fields.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { blankImage, FLEET, fleet, sandbox, virsh } from '../helpers/fleet.js'
import { buildTestImage, waitForMarker } from '../helpers/guest.js'
import { terminal, tmuxMissing, type Terminal } from '../helpers/tmux.js'

const sb = sandbox()
const home = join(sb.dir, 'home')
const created = sb.name('asked')
const declined = sb.name('declined')
const cancelled = sb.name('cancelled')
const twin = sb.name('twin')
const booted = sb.name('booted')
// What the command sees: the sandbox, a HOME with one key in ~/.ssh, and no CI variable.
const env = { ...sb.env, HOME: home, PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' }
let adminKey = ''
let userKey = ''
const open: Terminal[] = []
/** The settings the first test gives through the prompts. */
const answered = (): NewMachineSpec => ({
  memory: '768M', vcpus: '2', varSize: '512M', base: 'edge', network: 'user', arch: DEFAULTS.arch, dns: ['1.0.0.1'],
  hosts: ['10.0.0.5 db', '10.0.0.6 cache cache.lan'], tcpPorts: ['22', '80'], udpPorts: ['53'], adminKeys: [adminKey], userKeys: [userKey], host: '',
})

async function fleetAtTerminal(args: string[]): Promise<Terminal> {
  const t = await terminal(sb.dir, env, [FLEET, ...args])
  open.push(t)
  return t
}

/** Answers a text prompt (after the previous one is done) and waits for it to be accepted. */
async function answer(t: Terminal, prompt: RegExp, text: string): Promise<void> {
  await t.waitFor(prompt)
  await t.type(text)
  await t.keys('Enter')
}

/** Types a refused answer, sees the check's message under the same question, clears it. */
async function refused(t: Terminal, prompt: RegExp, text: string, message: string): Promise<void> {
  const asked = (await t.waitFor(prompt)).split('\n').find((l) => l.startsWith('? '))!
  await t.type(text)
  await t.keys('Enter')
  const s = await t.waitFor(new RegExp(message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
  const asking = s.split('\n').filter((l) => l.startsWith('? '))
  // Same question (its shown default gives way to the typed text), the bad answer still there.
  expect(asking, 'one question asked').toHaveLength(1)
  expect(asking[0]!.startsWith(asked.replace(/ \([^()]*\)$/, '')), `still "${asked}"`).toBe(true)
  expect(asking[0]!.endsWith(` ${text}`), 'the bad answer kept for editing').toBe(true)
  await t.keys('C-u')
}

function nothingWritten(name: string): void {
  expect(existsSync(join(sb.repo, 'machines', name)), `machines/${name}`).toBe(false)
  expect(existsSync(join(sb.state, 'vms', name)), `vms/${name}`).toBe(false)
  expect(existsSync(join(sb.repo, 'libvirt', `${name}.xml`)), `libvirt/${name}.xml`).toBe(false)
}

describe.skipIf(libvirtMissing || tmuxMissing)('create-vm prompts at a real terminal', () => {
  beforeAll(async () => {
    await blankImage(join(sb.dir, 'base.qcow2'))
    for (const channel of ['base', 'edge']) {
      const r = await fleet(sb, ['image', 'import', join(sb.dir, 'base.qcow2'), '--name', channel])
      expect(r.code, r.stderr).toBe(0)
    }
    mkdirSync(join(home, '.ssh'), { recursive: true })
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'admin@test', '-f', join(home, '.ssh', 'id_ed25519')])
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'user@test', '-f', join(sb.dir, 'user_key')])
    adminKey = readFileSync(join(home, '.ssh', 'id_ed25519.pub'), 'utf8').trim()
    userKey = readFileSync(join(sb.dir, 'user_key.pub'), 'utf8').trim()
  })
  afterAll(async () => {
    for (const t of open) await t.close()
    for (const n of [created, twin, booted, declined, cancelled]) {
      await virsh(['destroy', n])
      await virsh(['undefine', '--nvram', n])
    }
    sb.cleanup()
  })

  it('asks every question with its default, re-asks after a bad answer, confirms, writes machines/NAME and defines the VM', async () => {
    const t = await fleetAtTerminal(['create-vm', created])
    await refused(t, new RegExp(`^\\? Memory .*\\(${DEFAULTS.memory}\\)`, 'm'), 'lots', 'memory "lots" is not a size like 512M or 2G')
    await t.type('768M')
    await t.keys('Enter')
    await answer(t, new RegExp(`^\\? Virtual CPUs \\(${DEFAULTS.vcpus}\\)`, 'm'), '2')
    await answer(t, new RegExp(`^\\? Size of the /var disk.*\\(${DEFAULTS.varSize}\\)`, 'm'), '512M')

    await t.waitFor(/^\? Base image channel/m)
    await t.moveTo('edge')
    await t.keys('Enter')
    const net = await t.waitFor(/^\? Network/m)
    expect(net, 'the default network is preselected').toMatch(new RegExp(`^❯ ${DEFAULTS.network}$`, 'm'))
    expect(net).toMatch(/^\s+user$|^❯ user$/m)
    await t.moveTo('user')
    await t.keys('Enter')

    const dns = new RegExp(`^\\? DNS servers.*\\(${DEFAULTS.dns.join(', ').replace(/\./g, '\\.')}\\)`, 'm')
    await refused(t, dns, '1.0.0.1, dns.example', 'DNS server "dns.example" is not an IP address')
    await t.type('1.0.0.1')
    await t.keys('Enter')
    await answer(t, /^\? Extra \/etc\/hosts lines/m, '10.0.0.5 db, 10.0.0.6 cache cache.lan')
    await refused(t, /^\? TCP ports/m, '22, 80, 80', 'tcp port 80 is listed twice')
    await t.type('22, 80')
    await t.keys('Enter')
    await answer(t, /^\? UDP ports/m, '53')

    const found = await t.waitFor(/^\? SSH keys for the admin user: keys found in ~\/\.ssh/m)
    expect(found, 'the key in ~/.ssh is offered, checked for the admin').toMatch(/❯◉ id_ed25519\.pub/)
    await t.keys('Enter')
    await answer(t, /^\? Paste another admin key/m, '')
    await t.waitFor(/^\? SSH keys for the plain user: keys found/m)
    await t.keys('Enter') // not checked for the user: none chosen
    await refused(t, /^\? Paste a user key/m, 'ssh-ed25519 AAAAnot-a-key', 'user authorized key "ssh-ed25519 AAAAnot-a-key" is not an SSH public key')
    await t.type(userKey)
    await t.keys('Enter')
    await answer(t, /^\? Paste another user key/m, '')
    await answer(t, /^\? libvirt host/m, '')

    const sum = await t.waitFor(/^\? Create .* with these settings\?/m)
    expect(sum).toContain(`The same without questions: fleet create-vm ${shellWords([created, ...flagsFor(answered(), defaultSpec())])}\n`)
    for (const row of [/memory\s+768M/, /vcpus\s+2/, /var-size\s+512M/, /channel\s+edge/, /network\s+user/, /dns\s+1\.0\.0\.1$/m, /tcp-ports\s+22, 80/, /udp-ports\s+53/, /admin-key\s+1: admin@test/, /user-key\s+1: user@test/]) {
      expect(sum).toMatch(row)
    }
    await t.type('y')
    await t.keys('Enter')
    const code = await t.exited()
    expect(code, await t.screen()).toBe(0)
    expect(await t.screen()).toMatch(new RegExp(`Created ${created} on [0-9a-f]{12} \\(qemu\\), defined`))

    const dir = join(sb.repo, 'machines', created)
    const json = JSON.parse(readFileSync(join(dir, 'machine.json'), 'utf8')) as Record<string, unknown>
    expect(json).toMatchObject({ memory: '768M', vcpus: 2, varSize: '512M', network: 'user', base: 'edge', arch: DEFAULTS.arch })
    expect(json.sshPort).toEqual(expect.any(Number))
    const file = (f: string) => readFileSync(join(dir, f), 'utf8')
    expect(file('resolv.conf')).toBe('nameserver 1.0.0.1\n')
    expect(file('hosts')).toBe(`127.0.1.1 ${created}\n10.0.0.5 db\n10.0.0.6 cache cache.lan\n`)
    expect(file('tcp_ports')).toBe('22\n80\n')
    expect(file('udp_ports')).toBe('53\n')
    expect(file('admin_authorized_keys')).toBe(`${adminKey}\n`)
    expect(file('user_authorized_keys')).toBe(`${userKey}\n`)
    expect(existsSync(join(sb.state, 'vms', created, 'var.qcow2'))).toBe(true)
    expect((await virsh(['domstate', created])).stdout.trim()).toBe('shut off')
  }, 120_000)

  it('the command line shown after the summary creates the same machine without a terminal', async () => {
    const r = await fleet(sb, ['create-vm', twin, ...flagsFor(answered(), defaultSpec())])
    expect(r.code, r.stderr).toBe(0)
    const read = (n: string, f: string) => readFileSync(join(sb.repo, 'machines', n, f), 'utf8')
    const hardware = (n: string) => {
      const { mac: _m, uuid: _u, sshPort: _p, ...rest } = JSON.parse(read(n, 'machine.json')) as Record<string, unknown>
      return rest
    }
    expect(hardware(twin)).toEqual(hardware(created))
    for (const f of ['resolv.conf', 'tcp_ports', 'udp_ports', 'admin_authorized_keys', 'user_authorized_keys']) expect(read(twin, f), f).toBe(read(created, f))
    expect(read(twin, 'hosts').split('\n').slice(1)).toEqual(read(created, 'hosts').split('\n').slice(1))
  })

  it('a machine made only by answering prompts boots and shows the identity it was given', async () => {
    await buildTestImage(join(sb.dir, 'bootable.qcow2'), { version: 'prompted' })
    expect((await fleet(sb, ['image', 'import', join(sb.dir, 'bootable.qcow2'), '--name', 'bootable'])).code).toBe(0)
    const t = await fleetAtTerminal(['create-vm', booted, '--start'])
    await answer(t, /^\? Memory/m, '')
    await answer(t, /^\? Virtual CPUs/m, '')
    await answer(t, /^\? Size of the \/var disk/m, '256M')
    await t.waitFor(/^\? Base image channel/m)
    await t.moveTo('bootable')
    await t.keys('Enter')
    await t.waitFor(/^\? Network/m)
    await t.moveTo('none')
    await t.keys('Enter')
    await answer(t, /^\? DNS servers/m, '')
    await answer(t, /^\? Extra \/etc\/hosts/m, '')
    await answer(t, /^\? TCP ports/m, '22, 8080')
    for (const q of [/^\? UDP ports/m, /^\? SSH keys for the admin user/m, /^\? Paste another admin key/m, /^\? SSH keys for the plain user/m, /^\? Paste a user key/m, /^\? libvirt host/m]) {
      await t.waitFor(q)
      await t.keys('Enter')
    }
    await answer(t, /^\? Create .* with these settings\?/m, 'y')
    expect(await t.exited(), await t.screen()).toBe(0)
    const marker = await waitForMarker(sb, booted, 1, 120_000)
    const dir = join(sb.repo, 'machines', booted)
    expect(marker['machine-id']).toBe(readFileSync(join(dir, 'machine-id'), 'utf8').trim())
    expect(marker.hostname).toBe(booted)
    expect(marker.version).toBe('prompted')
    expect(marker.tcp_ports).toBe('22,8080')
  }, 180_000)

  it('does not ask what the flags gave, and writes nothing when the summary is declined', async () => {
    const t = await fleetAtTerminal(['create-vm', declined, '--memory', '1G', '--vcpus', '2', '--network', 'none', '--dns', '9.9.9.9'])
    await t.waitFor(/^\? Size of the \/var disk/m)
    for (const q of [/^\? Size of the \/var disk/m, /^\? Base image channel/m, /^\? Extra \/etc\/hosts/m, /^\? TCP ports/m, /^\? UDP ports/m,
      /^\? SSH keys for the admin user/m, /^\? Paste another admin key/m, /^\? SSH keys for the plain user/m, /^\? Paste a user key/m, /^\? libvirt host/m]) {
      await t.waitFor(q)
      await t.keys('Enter') // the defaults
    }
    const sum = await t.waitFor(/^\? Create .* with these settings\?/m)
    expect(sum).not.toMatch(/\? (Memory|Virtual CPUs|Network|DNS servers)/)
    expect(sum).toMatch(/memory\s+1G/)
    await t.type('n')
    await t.keys('Enter')
    expect(await t.exited()).toBe(2)
    expect(await t.screen()).toContain(`machine ${declined}: not created (answered no at the summary); nothing was written`)
    nothingWritten(declined)
  }, 60_000)

  it('Ctrl-C at a question leaves nothing behind', async () => {
    const t = await fleetAtTerminal(['create-vm', cancelled])
    await answer(t, /^\? Memory/m, '1G')
    await t.waitFor(/^\? Virtual CPUs/m)
    await t.keys('C-c')
    expect(await t.exited()).toBe(2)
    expect(await t.screen()).toContain(`machine ${cancelled}: cancelled at the prompts; nothing was written`)
    nothingWritten(cancelled)
  }, 60_000)

  it('never waits for input without a terminal: missing hardware flags are listed, with their defaults', async () => {
    const t0 = performance.now()
    const r = await fleet(sb, ['create-vm', cancelled])
    expect(performance.now() - t0).toBeLessThan(15_000)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`machine ${cancelled}: machines/${cancelled} does not exist and there is no terminal to ask on`)
    expect(r.stderr).toContain(`--memory (default ${DEFAULTS.memory}), --vcpus (default ${DEFAULTS.vcpus}), --var-size (default ${DEFAULTS.varSize}), --channel (default ${DEFAULTS.base}), --network (default ${DEFAULTS.network})`)
    expect(r.stderr).toContain('add --yes')
    nothingWritten(cancelled)
    const partial = await fleet(sb, ['create-vm', cancelled, '--memory', '1G', '--vcpus', '1', '--var-size', '1G'])
    expect(partial.stderr).toMatch(/missing --channel \(default [^)]+\), --network \(default [^)]+\)$/m)
    const given = await fleet(sb, ['create-vm', cancelled, '--memory', '1G', '--vcpus', '1', '--var-size', '1G', '--base', 'base', '--network', 'none', '--dry-run', '--json'])
    expect(given.code, given.stderr).toBe(0)
    expect(JSON.parse(given.stdout)).toMatchObject({ name: cancelled, definition: 'created', dryRun: true })
    nothingWritten(cancelled)
  })
})
