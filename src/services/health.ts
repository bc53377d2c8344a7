// Health checks after a restart (rolling upgrades): a VM counts as healthy only while its domain
// runs and, within the timeout, its QEMU guest agent answers, an SSH login works, or its serial
// console prints a pattern after the restart. A VM that powered itself off is never healthy.
import { existsSync } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import * as libvirt from '../adapters/libvirt.js'
import { UserError } from '../errors.js'
import type { VmName } from '../name.js'
import { vmFiles, type Paths } from '../repo.js'
import { waitForSsh } from './ssh.js'

export type HealthCheck = { kind: 'agent' } | { kind: 'ssh' } | { kind: 'console'; pattern: RegExp } | { kind: 'none' }

export const HEALTH_USAGE = 'agent, ssh, console:REGEX or none'

/** `agent`, `ssh`, `console:REGEX` (a JavaScript regular expression, matched per line) or `none`. */
export function parseHealth(s: string): HealthCheck {
  if (s === 'agent' || s === 'ssh' || s === 'none') return { kind: s }
  if (s.startsWith('console:')) {
    const src = s.slice('console:'.length)
    if (!src) throw new UserError(`--health console: needs a regular expression after "console:"`, 'e.g. --health "console:login:"')
    try {
      return { kind: 'console', pattern: new RegExp(src, 'm') }
    } catch (e) {
      throw new UserError(`--health ${JSON.stringify(s)}: not a valid regular expression (${(e as Error).message})`)
    }
  }
  throw new UserError(`--health ${JSON.stringify(s)} is not a health check`, `Use ${HEALTH_USAGE}.`)
}

export function describeHealth(h: HealthCheck): string {
  return h.kind === 'console' ? `console:${h.pattern.source}` : h.kind
}

/** Where the console log ends now: only what the VM prints after this counts for `console:`. */
export async function consoleMark(paths: Paths, name: VmName): Promise<number> {
  const f = vmFiles(paths, name).console
  return existsSync(f) ? (await stat(f)).size : 0
}

async function consoleSince(file: string, offset: number): Promise<string> {
  if (!existsSync(file)) return ''
  const size = (await stat(file)).size
  const from = size < offset ? 0 : offset // the log was replaced: all of it is new
  const fh = await open(file, 'r')
  try {
    const buf = Buffer.alloc(size - from)
    await fh.read(buf, 0, buf.length, from)
    return buf.toString('utf8').replace(/\r/g, '')
  } finally {
    await fh.close()
  }
}

async function remoteSince(read: () => Promise<string | undefined>, mark: number): Promise<string> {
  const all = ((await read()) ?? '').replace(/\r/g, '')
  return all.length < mark ? all : all.slice(mark) // shorter: the log was replaced, all of it is new
}

export interface HealthResult {
  healthy: boolean
  /** What was seen: the reason it failed, or what answered. */
  detail: string
  seconds: number
}

/**
 * Where the VM is: this host (its console log a local file), or a remote one (`uri`, and
 * `readConsole` fetching the log from there; `mark` is then its length in characters).
 */
export interface HealthWhere {
  uri?: string
  readConsole?: () => Promise<string | undefined>
}

/** Waits up to `timeoutS` for the VM to pass `check`; `mark` is the console offset from before its start. */
export async function waitHealthy(paths: Paths, name: VmName, check: HealthCheck, opts: { timeoutS: number; mark: number; log: (l: string) => void } & HealthWhere): Promise<HealthResult> {
  const t0 = Date.now()
  const deadline = t0 + opts.timeoutS * 1000
  const done = (healthy: boolean, detail: string): HealthResult => ({ healthy, detail, seconds: Math.round((Date.now() - t0) / 100) / 10 })
  const notRunning = async () => {
    const s = await libvirt.domainState(name, opts.uri)
    return s === 'running' || s === 'blocked' ? undefined : `the VM is ${s ?? 'not defined'}`
  }
  if (check.kind === 'none') return done(true, 'not checked (--health none)')
  if (check.kind === 'ssh') {
    try {
      await waitForSsh(paths, name, { user: 'admin', batch: true }, opts.timeoutS, opts.log)
      return done(true, 'SSH login as admin works')
    } catch (e) {
      return done(false, (e as Error).message)
    }
  }
  let lastLog = Date.now()
  for (;;) {
    const down = await notRunning()
    if (down) return done(false, down)
    if (check.kind === 'agent' && (await libvirt.agentPing(name, 5, opts.uri))) return done(true, 'the guest agent answers')
    if (check.kind === 'console' && check.pattern.test(await (opts.readConsole ? remoteSince(opts.readConsole, opts.mark) : consoleSince(vmFiles(paths, name).console, opts.mark)))) {
      // Printed, but a guest that powered off right after is not up.
      const gone = await notRunning()
      return gone ? done(false, `printed /${check.pattern.source}/, then ${gone}`) : done(true, `the console printed /${check.pattern.source}/`)
    }
    if (Date.now() >= deadline) {
      return done(false, check.kind === 'agent' ? `the guest agent did not answer within ${opts.timeoutS}s` : `the console did not print /${check.pattern.source}/ within ${opts.timeoutS}s`)
    }
    if (Date.now() - lastLog > 15_000) {
      opts.log(`${name}: waiting for its health check (${describeHealth(check)}), ${Math.round((Date.now() - t0) / 1000)}s so far`)
      lastLog = Date.now()
    }
    await sleep(1000)
  }
}
