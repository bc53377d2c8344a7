// Fault injection: run fleet and kill it at a named step (FLEET_TEST_KILL_AT, a test-only hook
// in src/util/interrupt.ts) or after a random delay; then check that nothing is orphaned.
import { execa } from 'execa'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { FLEET, type Sandbox } from './fleet.js'

export interface Killed {
  code: number | undefined
  signal: string | undefined
  stdout: string
  stderr: string
}

/** Runs fleet; `killAfterMs` sends SIGKILL after that long (a random moment), `env` adds hooks. */
export async function fleetKilled(sb: Pick<Sandbox, 'env'>, args: string[], opts: { env?: Record<string, string>; killAfterMs?: number; signalAfterMs?: { ms: number; signal: NodeJS.Signals }; signalWhenExists?: { file: string; signal: NodeJS.Signals } } = {}): Promise<Killed> {
  const p = execa(FLEET, args, { env: { ...sb.env, ...opts.env }, reject: false, stdin: 'ignore', timeout: 300_000 })
  let timer: NodeJS.Timeout | undefined
  if (opts.killAfterMs !== undefined) timer = setTimeout(() => p.kill('SIGKILL'), opts.killAfterMs)
  if (opts.signalAfterMs) timer = setTimeout(() => p.kill(opts.signalAfterMs!.signal), opts.signalAfterMs.ms)
  let poll: NodeJS.Timeout | undefined
  if (opts.signalWhenExists) {
    const { file, signal } = opts.signalWhenExists
    poll = setInterval(() => {
      if (!existsSync(file)) return
      clearInterval(poll)
      p.kill(signal)
    }, 50)
  }
  const r = await p
  if (timer) clearTimeout(timer)
  if (poll) clearInterval(poll)
  return { code: r.exitCode, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr) }
}

export function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex')
}

function walk(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    out.push(p)
    if (e.isDirectory()) walk(p, out)
  }
  return out
}

/**
 * What must hold after any recovery: no intent record, no scratch folder (they may hold private
 * host keys), no half-written file, every overlay's backing image present.
 */
export async function orphans(sb: Sandbox): Promise<string[]> {
  const bad: string[] = []
  const ops = join(sb.state, 'ops')
  if (existsSync(ops)) bad.push(...readdirSync(ops).map((f) => `intent ${f}`))
  const tmp = join(sb.state, 'tmp')
  if (existsSync(tmp)) bad.push(...readdirSync(tmp).map((f) => `scratch ${f}`))
  const verify = join(sb.state, 'verify')
  if (existsSync(verify)) bad.push(...readdirSync(verify).map((f) => `verification scratch ${f}`))
  for (const p of [...walk(sb.state), ...walk(sb.repo)]) {
    const b = p.split('/').pop()!
    if (/\.tmp-\d+$/.test(b) || b.startsWith('.import-') || /^\..*\.new-/.test(b) || b.startsWith('.var.qcow2.staging-') || b.endsWith('.swap') || b.endsWith('.next')) bad.push(`leftover ${p}`)
  }
  const vms = join(sb.state, 'vms')
  for (const vm of existsSync(vms) ? readdirSync(vms) : []) {
    for (const f of readdirSync(join(vms, vm)).filter((f) => f.startsWith('boot.qcow2'))) {
      const r = await execa('qemu-img', ['info', '-U', '--output=json', join(vms, vm, f)])
      const backing = (JSON.parse(String(r.stdout)) as { 'full-backing-filename'?: string })['full-backing-filename']
      if (!backing || !existsSync(backing)) bad.push(`${vm}/${f}: backing ${backing ?? '(none)'} missing`)
    }
  }
  return bad
}

/** Sizes and modes of the scratch area, for messages. */
export function describe(dir: string): string {
  return walk(dir).map((p) => `${p} ${statSync(p).mode.toString(8)}`).join('\n')
}
