// Zero-configuration login: a new machine with no --admin-key gets the invoking user's own public
// key (with sudo: SUDO_USER's), or else a key pair fleet keeps in the state directory, which
// `fleet ssh` then uses by default.
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { generateHostKey } from '../adapters/ssh-keygen.js'
import { UserError } from '../errors.js'
import type { Paths } from '../repo.js'
import type { Env } from '../util/env.js'

/** The keys ssh tries by default, in its order (ssh_config IdentityFile). */
const USER_KEYS = ['id_ed25519.pub', 'id_ecdsa.pub', 'id_rsa.pub']

export interface AdminLogin {
  /** user: your own key; fleet: fleet's key pair (made now if `created`). */
  source: 'user' | 'fleet'
  /** The public key file. */
  file: string
  key: string
  created: boolean
}

/** The home of the person who ran fleet: SUDO_USER's under sudo, from /etc/passwd. */
export async function invokingHome(env: Env = process.env, passwd = '/etc/passwd'): Promise<string> {
  const user = env.SUDO_USER
  if (user && user !== 'root') {
    const line = (await readFile(passwd, 'utf8').catch(() => '')).split('\n').find((l) => l.split(':')[0] === user)
    const home = line?.split(':')[5]
    if (home) return home
  }
  return env.HOME || homedir()
}

/** fleet's own login key pair: <state>/ssh/id_ed25519 (0600) and its .pub. */
export function fleetKeyFile(paths: Pick<Paths, 'state'>): string {
  return join(paths.state, 'ssh', 'id_ed25519')
}

/** The public key of fleet's pair, if it exists. */
export async function fleetPublicKey(paths: Pick<Paths, 'state'>): Promise<string | undefined> {
  const pub = `${fleetKeyFile(paths)}.pub`
  return existsSync(pub) ? (await readFile(pub, 'utf8')).trim() : undefined
}

/** The admin login key for a new machine given none; the fleet pair is made unless `dryRun`. */
export async function defaultAdminLogin(paths: Pick<Paths, 'state'>, dryRun: boolean, env: Env = process.env): Promise<AdminLogin> {
  const home = await invokingHome(env)
  for (const f of USER_KEYS) {
    const file = join(home, '.ssh', f)
    const key = existsSync(file) ? (await readFile(file, 'utf8').catch(() => '')).trim().split('\n')[0]?.trim() : undefined
    if (key) return { source: 'user', file, key, created: false }
  }
  const priv = fleetKeyFile(paths)
  const existing = await fleetPublicKey(paths)
  if (existing && existsSync(priv)) return { source: 'fleet', file: `${priv}.pub`, key: existing, created: false }
  if (dryRun) return { source: 'fleet', file: `${priv}.pub`, key: '', created: true }
  if (existsSync(priv)) throw new UserError(`fleet's login key ${priv} has no ${priv}.pub`, `Restore it (ssh-keygen -y -f ${priv} > ${priv}.pub), or remove ${priv} so fleet makes a new pair.`)
  await mkdir(join(paths.state, 'ssh'), { recursive: true, mode: 0o700 })
  await chmod(join(paths.state, 'ssh'), 0o700)
  await generateHostKey(priv, 'fleet-admin')
  await chmod(priv, 0o600)
  return { source: 'fleet', file: `${priv}.pub`, key: (await readFile(`${priv}.pub`, 'utf8')).trim(), created: true }
}
