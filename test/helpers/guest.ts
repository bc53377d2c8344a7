// Reading what test guests print on their serial console (vms/<name>/console.log).
import { execa } from 'execa'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ROOT, virsh, type Sandbox } from './fleet.js'

export interface Marker {
  version: string
  'machine-id': string
  hostname: string
  boot: string
  'data-sha256': string
  'hosts-sha256': string
  tcp_ports: string
  root: string
}

export function consoleLog(sb: Sandbox, name: string): string {
  const f = join(sb.state, 'vms', name, 'console.log')
  return existsSync(f) ? readFileSync(f, 'utf8').replace(/\r/g, '') : ''
}

export function tail(text: string, n = 40): string {
  return text.split('\n').slice(-n).join('\n')
}

function markers(log: string): Marker[] {
  return [...log.matchAll(/^FLEET-TEST-MARKER (.*)$/gm)].map((m) => Object.fromEntries(m[1]!.trim().split(' ').map((kv) => kv.split('=') as [string, string])) as unknown as Marker)
}

/** Waits for the `count`-th marker in the console log; on timeout fails with the log's tail. */
export async function waitForMarker(sb: Sandbox, name: string, count: number, timeoutMs = 180_000): Promise<Marker> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const log = consoleLog(sb, name)
    const found = markers(log)
    if (found.length >= count) return found[count - 1]!
    const err = /^FLEET-FATAL .*$/m.exec(log.split('FLEET-TEST-MARKER').slice(count - 1).join(''))
    if (err || Date.now() > deadline) {
      throw new Error(`${name}: no boot marker #${count} ${err ? `(guest said: ${err[0]})` : `within ${timeoutMs / 1000}s`}\n--- tail of ${name} console.log ---\n${tail(log)}\n---`)
    }
    await sleep(500)
  }
}

/** Builds the tiny UEFI test image (test/image) with a version string. */
export async function buildTestImage(out: string, opts: { version: string; varLabel?: string; stayUp?: boolean; ssh?: boolean; breakContract?: 'identity' }): Promise<number> {
  const t0 = performance.now()
  await execa(join(ROOT, 'test', 'image', 'build-test-image.sh'), [out, '--version', opts.version, ...(opts.varLabel ? ['--var-label', opts.varLabel] : []), ...(opts.stayUp ? ['--stay-up'] : []), ...(opts.ssh ? ['--ssh'] : []), ...(opts.breakContract ? ['--break-contract', opts.breakContract] : [])])
  return Math.round(performance.now() - t0)
}

/** Waits until the guest has powered itself off; fails with the console tail if it does not. */
export async function waitOff(sb: Sandbox, name: string, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms
  while ((await virsh(['domstate', name])).stdout.trim() !== 'shut off') {
    if (Date.now() > deadline) throw new Error(`${name} did not power off\n${tail(consoleLog(sb, name))}`)
    await sleep(500)
  }
}
