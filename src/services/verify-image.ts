// Boot verification: an image is promoted only after it proves the guest contract
// (docs/guest-contract.md, "Verification"). It boots in a throwaway domain (ops/verify-domain.ts)
// with a throwaway identity on a fresh /var disk, under the host's domain type, and must print a
// self-check line that matches that identity. The guest reports facts; this side decides.
import { randomBytes, randomUUID } from 'node:crypto'
import { chmod, copyFile, mkdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import * as libvirt from '../adapters/libvirt.js'
import * as qemuImg from '../adapters/qemu-img.js'
import { generateHostKey } from '../adapters/ssh-keygen.js'
import { UserError } from '../errors.js'
import { findFirmware } from '../firmware.js'
import type { Arch, Machine } from '../machines/model.js'
import type { VmName } from '../name.js'
import { removeDomain, verifyDomainName } from '../ops/verify-domain.js'
import type { VmFiles } from '../repo.js'
import { fleetId } from '../store/fleet-id.js'
import { step } from '../util/interrupt.js'
import type { Undo } from '../util/undo.js'
import { buildDomain } from '../xml/build-domain.js'
import type { VirtType } from '../xml/domain.js'
import { serializeDomain } from '../xml/serialize.js'
import type { FleetContext } from './context.js'
import { checkQemuCanReach, VM_DISK_MODE } from './permissions.js'
import { createVarDisk } from './var-disk.js'

/**
 * Seconds a guest gets to print its self-check line. A Debian boot takes seconds under KVM and
 * ~1 minute under TCG on an idle host, but was measured at ~5 minutes on a heavily loaded one.
 */
export const VERIFY_TIMEOUT_S = 600

export interface VerifyOptions {
  arch: Arch
  /** The channel the image is meant for (metadata and the kept log's name). */
  channel: string
  timeoutS: number
}

export interface VerifyReport {
  domain: string
  virtType: VirtType
  /** Start of the domain → self-check line. */
  seconds: number
  /** The self-check line the guest printed. */
  line: string
}

/** A failed verification: the reasons, and where the console log was kept. */
export class VerificationFailed extends UserError {
  constructor(readonly reasons: string[], readonly consoleLog: string | undefined, channel: string) {
    super(`the image did not prove the guest contract, so channel ${channel} was not moved: ${reasons.join('; ')}`,
      `${consoleLog ? `Read the guest's console log in ${consoleLog}. ` : ''}The contract is docs/guest-contract.md; --no-verify (build) or leaving out --verify (image import) promotes an image without this check.`)
    this.name = 'VerificationFailed'
  }
}

// Not anchored at the line start: a unit's copy through journald carries a "[time] unit[pid]: "
// prefix, and kernel messages may share the console line.
const SELF_CHECK = /FLEET-SELF-CHECK (machine-id=\S+ root=\S+ var=\S+ hostkey=\S+)/
const FATAL = /FLEET-FATAL (.*)$/m

/** The fields of a self-check line (`key=value` words). */
export function parseSelfCheck(line: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null)
  for (const w of line.trim().split(/\s+/)) {
    const i = w.indexOf('=')
    if (i > 0) out[w.slice(0, i)] = w.slice(i + 1)
  }
  return out
}

/** What the host expects of the self-check line, given the identity it wrote. */
export interface Expected {
  machineId: string
  /** The base64 part of ssh_host_ed25519_key.pub. */
  hostKey: string
}

/** Every way the line differs from what the contract demands; empty when it honours it. */
export function selfCheckProblems(fields: Record<string, string>, want: Expected): string[] {
  const problems: string[] = []
  const field = (k: string) => fields[k] ?? '(missing)'
  if (field('machine-id') !== want.machineId) problems.push(`machine-id is ${field('machine-id')}, not the identity's ${want.machineId}`)
  if (field('root') !== 'ro') problems.push(`/ is ${field('root') === 'rw' ? 'writable' : field('root')}, not read-only`)
  if (field('var') !== 'var') problems.push(`/var is ${field('var') === 'none' ? 'not a labelled disk' : `labelled ${field('var')}`}, not the disk labelled var`)
  if (field('hostkey') !== want.hostKey) problems.push(`the SSH host key is ${field('hostkey') === 'none' ? 'missing or unusable' : 'not the identity\'s'}`)
  return problems
}

/** A complete, valid identity no machine has: random machine-id, a new host key. */
async function throwawayIdentity(dir: string): Promise<{ identity: Map<string, Buffer>; want: Expected }> {
  const machineId = randomBytes(16).toString('hex')
  const keyDir = join(dir, 'key')
  await mkdir(keyDir, { mode: 0o700 })
  const key = join(keyDir, 'ssh_host_ed25519_key')
  await generateHostKey(key, 'fleet-verify')
  const [priv, pub] = await Promise.all([readFile(key), readFile(`${key}.pub`)])
  await rm(keyDir, { recursive: true, force: true })
  const identity = new Map<string, Buffer>([
    ['machine-id', Buffer.from(`${machineId}\n`)],
    ['hostname', Buffer.from('fleet-verify\n')],
    ['ssh_host_ed25519_key', priv],
    ['ssh_host_ed25519_key.pub', pub],
    ['resolv.conf', Buffer.from('')],
    ['hosts', Buffer.from('')],
    ['tcp_ports', Buffer.from('22\n')],
    ['udp_ports', Buffer.from('')],
    ['admin_authorized_keys', Buffer.from('')],
    ['user_authorized_keys', Buffer.from('')],
  ])
  return { identity, want: { machineId, hostKey: pub.toString('utf8').trim().split(/\s+/)[1] ?? '' } }
}

/** Copies the console log of a failed verification to <state>/verify-logs/ (0700); returns its path. */
async function keepConsoleLog(ctx: FleetContext, from: string, channel: string): Promise<string | undefined> {
  const dir = ctx.paths.verifyLogs
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${channel.replace('@', '-')}.log`)
  try {
    await copyFile(from, file)
    await chmod(file, 0o600)
    return file
  } catch {
    return undefined // the guest never got as far as the console
  }
}

/**
 * Boots `image` (a standalone qcow2 already checked by verifyBaseImage, in or under `dir`, a
 * qemu-reachable scratch folder from makeScratch(..., { qemu: true })) and resolves with the
 * guest's self-check line if it honours the contract; else throws VerificationFailed. The
 * domain is registered with `undo` the moment it exists, so a failure or Ctrl-C removes it.
 */
export async function verifyBoot(ctx: FleetContext, undo: Undo, image: string, dir: string, o: VerifyOptions): Promise<VerifyReport> {
  const { paths } = ctx
  await checkQemuCanReach([dir])
  const id = await fleetId(paths)
  const name = verifyDomainName(id, dir)
  const virtType = await ctx.virtType()
  const files: VmFiles = { dir, boot: join(dir, 'boot.qcow2'), var: join(dir, 'var.qcow2'), nvram: join(dir, 'OVMF_VARS.fd'), console: join(dir, 'console.log'), lock: '' }

  step('verify:disks')
  const { identity, want } = await throwawayIdentity(dir)
  await qemuImg.createOverlay(files.boot, image)
  await chmod(files.boot, VM_DISK_MODE)
  await createVarDisk(files.var, 256 * 2 ** 20, identity, 'mkfs', dir)

  // Not a machine: a name no machine can have, no network, a reboot powers it off.
  const m = {
    name: name as VmName, uuid: randomUUID(), memoryBytes: 1024 * 2 ** 20, vcpus: 1, network: 'none', mac: '', arch: o.arch, base: o.channel,
  } as Machine
  const xml = serializeDomain(buildDomain(m, {
    virtType, firmware: findFirmware(o.arch), files, baseDigest: 'unverified', fleetId: id, onReboot: 'destroy', userNet: 'slirp',
  }))

  step('verify:define')
  undo.add(`throwaway domain ${name}`, () => removeDomain(name))
  await libvirt.defineXml(xml)
  step('verify:start')
  ctx.log(`verify: booting the image in throwaway domain ${name} (${virtType}); waiting up to ${o.timeoutS} s for its self-check line`)
  const t0 = performance.now()
  await libvirt.start(name)

  const deadline = Date.now() + o.timeoutS * 1000
  let failure: string | undefined
  let line: string | undefined
  for (;;) {
    step('verify:wait') // Ctrl-C ends the wait here; the undo removes the domain
    const running = await libvirt.isActive(name)
    const text = (await readFile(files.console, 'utf8').catch(() => '')).replace(/\r/g, '')
    const fatal = FATAL.exec(text)
    line = SELF_CHECK.exec(text)?.[0]
    if (line) break
    if (fatal) failure = `the guest stopped with "FLEET-FATAL ${fatal[1]!.trim()}"`
    else if (!running) failure = 'the guest powered off without printing a self-check line'
    else if (Date.now() > deadline) failure = `no self-check line within ${o.timeoutS} s`
    if (failure) break
    await sleep(500)
  }
  const seconds = Math.round((performance.now() - t0) / 100) / 10
  // Off before its log is copied or judged: virtlogd has written everything by then.
  await removeDomain(name)
  const problems = failure ? [failure] : selfCheckProblems(parseSelfCheck(line!.slice('FLEET-SELF-CHECK'.length)), want)
  if (problems.length) {
    const kept = await keepConsoleLog(ctx, files.console, o.channel)
    throw new VerificationFailed(problems, kept, o.channel)
  }
  ctx.log(`verify: ${line} (${seconds} s)`)
  return { domain: name, virtType, seconds, line: line! }
}
