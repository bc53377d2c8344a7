// OpenSSH client: connections to guests with host-key checking against a known_hosts file that
// fleet writes from the machine's own public host key (no trust on first use).
import { words } from '../util/env.js'
import { runInteractive, tryRun } from './exec.js'
import { remoteCommand } from './remote-shell.js'

export interface SshTarget {
  host: string
  port: number
  user: string
  /** Name the host key is filed under in known_hosts (HostKeyAlias). */
  alias: string
  knownHosts: string
  identity?: string
  /** No prompts at all (scripts, CI, waiting for boot). */
  batch: boolean
  connectTimeoutS?: number
  /** The guest is reached through this command (ssh -W %h:%p to its libvirt host): a ProxyCommand, as argv. */
  proxy?: string[]
}

function sshCommand(): string[] {
  const w = words(process.env.FLEET_SSH)
  return w.length ? w : ['ssh']
}

export function sshArgs(t: SshTarget): string[] {
  return [
    '-o', `UserKnownHostsFile=${t.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `HostKeyAlias=${t.alias}`,
    '-o', 'CheckHostIP=no',
    '-o', 'LogLevel=ERROR',
    '-o', `ConnectTimeout=${t.connectTimeoutS ?? 10}`,
    ...(t.batch ? ['-o', 'BatchMode=yes'] : []),
    ...(t.identity ? ['-i', t.identity, '-o', 'IdentitiesOnly=yes'] : []),
    // ssh hands ProxyCommand to a shell: every word quoted.
    ...(t.proxy ? ['-o', `ProxyCommand=${remoteCommand(t.proxy)}`] : []),
    '-p', String(t.port),
    '-l', t.user,
    t.host,
  ]
}

/** Runs ssh attached to our terminal; resolves with its exit code (the remote command's). */
export async function sshInteractive(t: SshTarget, command: string[]): Promise<number> {
  return runInteractive(sshCommand(), [...sshArgs(t), ...(command.length ? ['--', ...command] : [])])
}

/** One non-interactive probe: can we log in and run `true`? Returns ssh's stderr on failure. */
export async function sshProbe(t: SshTarget): Promise<{ ok: boolean; error: string }> {
  const r = await tryRun(sshCommand(), [...sshArgs({ ...t, batch: true, connectTimeoutS: 5 }), '--', 'true'], { timeoutMs: 30_000 }).catch((e: Error) => ({ exitCode: 255, stderr: e.message, stdout: '' }))
  return { ok: r.exitCode === 0, error: r.stderr.trim() }
}
