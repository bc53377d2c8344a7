// Zero-configuration login: a new machine with no --admin-key gets the invoking user's own public
// key (with sudo: SUDO_USER's), or else a key pair fleet keeps in the state directory, which
// `fleet ssh` then uses by default.
import { existsSync } from 'node:fs'
import { chmod, mkdir, readdir, readFile, rm } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { UserError } from '../errors.js'
import { generateHostKeyPair, parsePrivateKey, parsePublicKey, publicKeyLine } from '../machines/host-key.js'
import type { Paths } from '../repo.js'
import type { Env } from '../util/env.js'
import { writeFileAtomic } from '../util/fsx.js'
import { withLock } from '../util/lock.js'

/** The keys ssh tries by default, in its order (ssh_config IdentityFile). */
const USER_KEYS = ['id_ed25519.pub', 'id_ecdsa.pub', 'id_rsa.pub']
/** The comment of fleet's own pair. */
const COMMENT = 'fleet-admin'

export interface AdminLogin {
  /** user: your own key; fleet: fleet's key pair (made, or its .pub restored, now if `created`). */
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
  if (dryRun) {
    const derived = existsSync(priv) ? publicKeyLine(keyOf(priv, await readFile(priv, 'utf8')), COMMENT) : undefined
    return { source: 'fleet', file: `${priv}.pub`, key: derived ?? '', created: true }
  }
  return fleetKeyPair(paths)
}

/**
 * Makes fleet's pair, or completes it, under a lock: two first create-vms at once get one pair.
 * The .pub is written before the private key (each atomically), so a kill in between leaves a
 * lone .pub, which is replaced; a private key without its .pub (from an older fleet, or a .pub
 * removed by hand) gets its .pub back, derived from the key. Temp files a killed write left are
 * removed here too.
 */
async function fleetKeyPair(paths: Pick<Paths, 'state'>): Promise<AdminLogin> {
  const priv = fleetKeyFile(paths)
  const pub = `${priv}.pub`
  await mkdir(dirname(priv), { recursive: true, mode: 0o700 })
  await chmod(dirname(priv), 0o700)
  return withLock(join(paths.state, 'locks', 'login-key.lock'), "fleet's login key", async () => {
    // Temp files of a write killed part way (writeFileAtomic's NAME.tmp-PID): under this lock no one
    // else is writing them, and a pair is only ever incomplete after such a kill, which brings us here.
    for (const f of await readdir(dirname(priv))) {
      if (/^id_ed25519(\.pub)?\.tmp-\d+$/.test(f)) await rm(join(dirname(priv), f), { force: true })
    }
    const privText = await readFile(priv, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)))
    if (privText !== undefined) {
      const key = keyOf(priv, privText)
      const existing = await fleetPublicKey(paths)
      const theirs = existing === undefined ? undefined : parsePublicKey(existing)
      if (existing && Buffer.isBuffer(theirs) && theirs.equals(key)) return { source: 'fleet', file: pub, key: existing, created: false }
      const line = publicKeyLine(key, COMMENT)
      await writeFileAtomic(pub, `${line}\n`, 0o644)
      return { source: 'fleet', file: pub, key: line, created: true }
    }
    const pair = generateHostKeyPair(COMMENT)
    await writeFileAtomic(pub, pair.publicKey, 0o644)
    await writeFileAtomic(priv, pair.privateKey, 0o600)
    return { source: 'fleet', file: pub, key: pair.publicKey.trim(), created: true }
  })
}

/** The public key of fleet's private key, or a UserError naming the file when fleet cannot use it. */
function keyOf(file: string, text: string): Buffer {
  const key = parsePrivateKey(text)
  if (typeof key === 'string') throw new UserError(`fleet's login key ${file} ${key}`, `Remove ${file} (and ${file}.pub) so fleet makes a new pair, or put an unencrypted ed25519 key there.`)
  return key
}
