// Commands on a remote libvirt host over SSH (the login of its qemu+ssh:// URI). ssh hands the
// remote shell one string, so every argv element is POSIX single-quoted here: no word of it is
// ever re-split or expanded there. Nothing else builds a remote command line.
import type { SshLogin } from '../hosts/host-uri.js'
import { run, startSession, tryRun, type RunOptions, type RunResult, type Session } from './exec.js'

/** One word for a POSIX shell, whatever it contains: 'it'\''s'. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`
}

/** The remote command line for `argv`: each element quoted. */
export const remoteCommand = (argv: readonly string[]): string => argv.map(shellQuote).join(' ')

/** ssh's own argv up to the destination: batch mode (never a prompt), the URI's key and host-key settings. */
export function sshArgs(login: SshLogin): string[] {
  return [
    '-o', 'BatchMode=yes',
    '-o', 'ServerAliveInterval=15',
    ...(login.port ? ['-p', String(login.port)] : []),
    ...(login.keyfile ? ['-i', login.keyfile, '-o', 'IdentitiesOnly=yes'] : []),
    ...(login.noVerify ? ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'] : []),
    ...(login.knownHosts ? ['-o', `UserKnownHostsFile=${login.knownHosts}`] : []),
    `${login.user ? `${login.user}@` : ''}${login.host}`,
  ]
}

/** A ProxyCommand through the host: ssh to it, then -W to the guest's address as seen from there. */
export const jumpThrough = (login: SshLogin): string[] => ['ssh', ...sshArgs(login).slice(0, -1), '-W', '%h:%p', sshArgs(login).at(-1)!]

const ssh = (login: SshLogin, argv: readonly string[]) => ['ssh', ...sshArgs(login), '--', remoteCommand(argv)]

/** Runs argv on the host; rejects with a ToolError naming the remote command. */
export async function runOn(login: SshLogin, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = ssh(login, argv)
  return run([cmd!], args, opts)
}

/** Runs argv on the host and returns its exit code instead of throwing. */
export async function tryRunOn(login: SshLogin, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = ssh(login, argv)
  return tryRun([cmd!], args, opts)
}

/** A long-running remote command whose stdin is this process's pipe (it ends when fleet does). */
export async function sessionOn(login: SshLogin, argv: readonly string[]): Promise<Session> {
  const [cmd, ...args] = ssh(login, argv)
  return startSession([cmd!], args)
}
