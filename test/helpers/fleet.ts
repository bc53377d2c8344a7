// Drives the real `fleet` executable as a user would, in a throwaway repo and state dir.
import { execa } from 'execa'
import { chmodSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const FLEET = join(ROOT, 'bin', 'fleet')
/** Every libvirt domain a test makes starts with this, so leftovers can be found and removed. */
// FLEET_TEST_PREFIX lets two test runs share a host: each sweeps only its own domains.
export const TEST_PREFIX = process.env.FLEET_TEST_PREFIX ?? 'fltest-'

export interface Sandbox {
  dir: string
  repo: string
  state: string
  env: Record<string, string>
  /** A machine name unique to this run. */
  name: (base: string) => string
  cleanup: () => void
}

export function sandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-test-'))
  chmodSync(dir, 0o755) // qemu runs as libvirt-qemu and must reach the disks
  const repo = join(dir, 'repo')
  const state = join(dir, 'state')
  mkdirSync(join(repo, 'machines'), { recursive: true })
  mkdirSync(state, { recursive: true, mode: 0o755 })
  const tag = Math.random().toString(36).slice(2, 7)
  return {
    dir,
    repo,
    state,
    env: { FLEET_REPO: repo, FLEET_STATE_DIR: state, FLEET_VIRT_TYPE: 'qemu', FLEET_ON_REBOOT: 'destroy', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' },
    name: (base) => `${TEST_PREFIX}${tag}-${base}`,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}

export interface Run {
  code: number
  stdout: string
  stderr: string
}

export async function fleet(sb: Pick<Sandbox, 'env'>, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<Run> {
  const r = await execa(FLEET, args, {
    env: sb.env,
    reject: false,
    input: opts.input,
    stdin: opts.input === undefined ? 'ignore' : undefined,
    timeout: opts.timeoutMs ?? 120_000,
  })
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }
}

export async function fleetJson<T>(sb: Pick<Sandbox, 'env'>, args: string[]): Promise<T> {
  const r = await fleet(sb, [...args, '--json'])
  if (r.code !== 0) throw new Error(`fleet ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`)
  return JSON.parse(r.stdout) as T
}

export async function virsh(args: string[]): Promise<Run> {
  const r = await execa('virsh', ['-c', 'qemu:///system', ...args], { reject: false })
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }
}

/** An empty standalone qcow2 to import as a base when nothing needs to boot. */
export async function blankImage(file: string, size = '64M'): Promise<void> {
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', file, size])
}
