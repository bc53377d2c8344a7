// guestfish: writes identity files into /var disks. One appliance launch serves many disks.
import { nodeCrypto } from '../util/builtin.js'
import { ToolError } from '../errors.js'
import { words } from '../util/env.js'
import { interrupted, interruptedError } from '../util/interrupt.js'
import { run } from './exec.js'
import { startSession, type Session } from './exec.js'

const guestfish = (): string[] => words(process.env.GUESTFISH || 'guestfish')

let applianceTcg = false
/**
 * Where KVM does not really work (the domain type resolved to qemu), the appliance must not try
 * it either: libguestfs would hang on such a /dev/kvm. LIBGUESTFS_BACKEND_SETTINGS still wins.
 */
export function useTcgAppliance(tcg: boolean): void {
  applianceTcg = tcg
}

function gfEnv(): Record<string, string> {
  const env: Record<string, string> = { LIBGUESTFS_BACKEND: process.env.LIBGUESTFS_BACKEND || 'direct' }
  if (process.env.LIBGUESTFS_BACKEND_SETTINGS) env.LIBGUESTFS_BACKEND_SETTINGS = process.env.LIBGUESTFS_BACKEND_SETTINGS
  else if (applianceTcg) env.LIBGUESTFS_BACKEND_SETTINGS = 'force_tcg'
  return env
}

/** One guestfish command as an argument list; commands are joined with ':' argv separators. */
export type GfCommand = string[]

/** Runs commands against disks in ONE appliance launch. Disk i is /dev/sd{a+i}. */
export async function runGuestfish(disks: string[], commands: GfCommand[], opts: { readonly?: boolean } = {}): Promise<string> {
  const add = disks.flatMap((file) => ['-a', file])
  const script = commands.flatMap((c) => [':', ...c])
  const mode = opts.readonly ? '--ro' : '--rw'
  const r = await run(guestfish(), [mode, '--format=qcow2', ...add, '--', 'run', ...script], { env: gfEnv(), privileged: !opts.readonly })
  return r.stdout
}

export function deviceOf(index: number): string {
  return `/dev/sd${String.fromCharCode(97 + index)}`
}

/** One guestfish argument in its own quoting: double quotes, backslash escapes. */
function quote(arg: string): string {
  if (/[\0-\x1f]/.test(arg)) throw new Error(`guestfish argument with a control character: ${JSON.stringify(arg)}`)
  return `"${arg.replace(/[\\"]/g, (c) => `\\${c}`)}"`
}

/**
 * guestfish driven one command at a time over stdin, for work that must look before it writes
 * (guestfish scripts have no conditionals). Each command is followed by `echo MARKER`, so its
 * output is what stdout shows before the marker. A failing command ends guestfish (no `-`
 * prefix), and the call rejects with a ToolError naming that command. If fleet dies, guestfish
 * reads EOF after the command in flight and exits, and libguestfs stops the appliance. After
 * Ctrl-C / SIGTERM the next call rejects with Interrupted, before sending anything.
 */
export class GuestfishSession {
  private readonly marker = `--fleet-${nodeCrypto().randomUUID()}--`
  private dead: ToolError | undefined
  private holdInterrupt = false

  private constructor(private readonly session: Session, private readonly argv: string[]) {}

  /** Starts guestfish on `disks` (disk i is deviceOf(i)) and launches the appliance. */
  static async open(disks: string[]): Promise<GuestfishSession> {
    const argv = ['--rw', '--format=qcow2', ...disks.flatMap((file) => ['-a', file])]
    const g = new GuestfishSession(await startSession(guestfish(), argv, { env: gfEnv(), privileged: true }), argv)
    await g.call('run')
    return g
  }

  private async call(...args: string[]): Promise<string> {
    if (this.dead) throw this.dead
    // Ctrl-C / SIGTERM: stop between two commands (each leaves the disks consistent); close() then ends guestfish cleanly.
    if (interrupted() && !this.holdInterrupt) throw interruptedError()
    const [name, ...rest] = args
    this.session.send(`${[name, ...rest.map(quote)].join(' ')}\necho ${this.marker}\n`)
    const out: string[] = []
    for (;;) {
      const line = await this.session.nextLine()
      if (line === this.marker) return out.join('\n')
      if (line === undefined) break
      out.push(line)
    }
    const r = await this.session.end()
    const stderr = this.session.stderr()
    this.dead = new ToolError(`${guestfish().join(' ')} ${this.argv.join(' ')}`, args, r.exitCode, r.error ?? stderr)
    throw this.dead
  }

  private async bool(...args: string[]): Promise<boolean> {
    const out = (await this.call(...args)).trim()
    if (out !== 'true' && out !== 'false') throw new ToolError(guestfish().join(' '), args, 0, `unexpected answer: ${out}`)
    return out === 'true'
  }

  /** Runs `fn`'s commands without stopping between them on Ctrl-C (e.g. the two renames of a swap). */
  async uninterrupted<T>(fn: () => Promise<T>): Promise<T> {
    this.holdInterrupt = true
    try {
      return await fn()
    } finally {
      this.holdInterrupt = false
    }
  }

  /** Filesystem type on a device ('' when there is none). */
  vfsType = async (device: string): Promise<string> => (await this.call('vfs-type', device)).trim()
  vfsLabel = async (device: string): Promise<string> => (await this.call('vfs-label', device)).trim()
  /** `e2fsck -f -p`: replays the journal and repairs what is safe; rejects if errors remain. */
  e2fsck = async (device: string): Promise<void> => void (await this.call('e2fsck', device, 'correct:true'))
  mount = async (device: string, at = '/'): Promise<void> => void (await this.call('mount', device, at))
  umount = async (at = '/'): Promise<void> => void (await this.call('umount', at))
  /** True if `path` exists (a dangling symlink counts). */
  exists = async (path: string): Promise<boolean> => (await this.bool('exists', path)) || (await this.bool('is-symlink', path))
  /** rename(2): atomic, and refuses to move a folder onto a non-empty one. */
  rename = async (from: string, to: string): Promise<void> => void (await this.call('rename', from, to))
  rmRf = async (path: string): Promise<void> => void (await this.call('rm-rf', path))
  /** Unpacks a local tar into `dir`, keeping the modes and owners it records. */
  tarIn = async (local: string, dir: string): Promise<void> => void (await this.call('tar-in', local, dir))
  /** Flushes everything written so far to the disk images. */
  sync = async (): Promise<void> => void (await this.call('sync'))

  /** Ends guestfish (EOF on stdin): it unmounts, syncs and stops the appliance. */
  async close(): Promise<void> {
    if (this.dead) return
    const r = await this.session.end()
    if (r.exitCode !== 0) throw new ToolError(guestfish().join(' '), this.argv, r.exitCode, r.error ?? this.session.stderr())
  }
}
