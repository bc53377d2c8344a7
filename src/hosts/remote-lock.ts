// The lock of a VM on a remote host, held ON that host, so two admins' fleet processes (on any
// machines) that drive the VM both see it: flock(1) on /tmp/fleet-vm-NAME.lock there, held by a
// shell whose stdin is fleet's SSH connection. When fleet ends, is killed or loses the connection,
// the shell reads EOF and exits, and the lock goes with it: nothing to clean up after a kill -9.
import { UserError } from '../errors.js'
import { sessionOn } from '../adapters/remote-shell.js'
import type { SshLogin } from './host-uri.js'

// $1 lock file, $2 seconds to wait. Opened read-only (a file another user made in sticky /tmp
// cannot be opened for writing); flock only needs a descriptor.
const HOLD = `[ -e "$1" ] || (umask 0; : >>"$1") 2>/dev/null
exec 9<"$1" || exit 90
flock -x -w "$2" 9 || exit 91
echo fleet-locked
exec cat >/dev/null`

export const remoteLockFile = (name: string) => `/tmp/fleet-vm-${name}.lock`
/** A base image's lock on a host: shipping it, backing an overlay on it and collecting it exclude each other. */
export const baseLockFile = (digest: string) => `/tmp/fleet-base-${digest.slice(0, 32)}.lock`

/** Holds the VM's lock on its host while fn runs. */
export function withRemoteLock<T>(login: SshLogin, name: string, fn: () => Promise<T>, waitS = 300): Promise<T> {
  return withHostLock(login, remoteLockFile(name), `machine ${name}`, fn, waitS)
}

/** Holds a base image's lock on the host while fn runs (taken inside a VM's lock, never around one). */
export function withBaseLock<T>(login: SshLogin, digest: string, fn: () => Promise<T>, waitS = 600): Promise<T> {
  return withHostLock(login, baseLockFile(digest), `base image ${digest.slice(0, 12)}`, fn, waitS)
}

async function withHostLock<T>(login: SshLogin, file: string, what: string, fn: () => Promise<T>, waitS: number): Promise<T> {
  const s = await sessionOn(login, ['sh', '-c', HOLD, 'sh', file, String(waitS)])
  const first = await s.nextLine()
  if (first !== 'fleet-locked') {
    const r = await s.end()
    throw new UserError(`${what}: could not lock it on ${login.host} (${r.exitCode === 91 ? `another fleet process held ${file} for ${waitS}s` : s.stderr().trim() || `exit ${r.exitCode}`})`,
      'Wait for the other fleet command to finish, then run this one again.')
  }
  try {
    return await fn()
  } finally {
    await s.end()
  }
}
