// The admin's own key that decrypts machine secrets: --identity, else FLEET_AGE_IDENTITY, else
// what the admin already has: ~/.config/fleet/identity.txt (an age identity), ~/.ssh/id_ed25519,
// ~/.ssh/id_rsa. Under sudo the invoking user's home is searched first (root's has no keys).
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { UserError } from '../errors.js'
import type { Env } from '../util/env.js'

/** Where fleet keeps an age identity it generated (fleet init, when the admin had no key). */
export const FLEET_IDENTITY = join('.config', 'fleet', 'identity.txt')
const SEARCHED = [FLEET_IDENTITY, join('.ssh', 'id_ed25519'), join('.ssh', 'id_rsa')]

export interface Home {
  dir: string
  /** The owner when fleet runs under sudo, so files made there are the admin's, not root's. */
  uid?: number
  gid?: number
}

/** The home folders to search: SUDO_USER's (from /etc/passwd) first under sudo, then HOME. */
export function adminHomes(env: Env = process.env): Home[] {
  const homes: Home[] = []
  if (env.SUDO_USER && process.getuid?.() === 0) {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[0] === env.SUDO_USER)
    const f = line?.split(':')
    if (f && f[5]) homes.push({ dir: f[5], uid: Number(f[2]), gid: Number(f[3]) })
  }
  const own = env.HOME || homedir()
  if (!homes.some((h) => h.dir === own)) homes.push({ dir: own })
  return homes
}

/** Decrypts on demand with the identities found once, on first use (commands that decrypt nothing never look). */
export class Keyring {
  private found: { files: string[]; searched: string[] } | undefined
  constructor(private readonly explicit?: string, private readonly env: Env = process.env) {}

  /** The identity files to try, and what was searched (for messages). Throws if none. */
  identities(): { files: string[]; searched: string[] } {
    this.found ??= this.search()
    if (!this.found.files.length) {
      throw new UserError(`no key to decrypt machine secrets with: none of ${this.found.searched.join(', ')} exists`,
        'Pass --identity FILE or set FLEET_AGE_IDENTITY to your age identity or SSH private key (its public key must be in .fleet/recipients).')
    }
    return this.found
  }

  private search(): { files: string[]; searched: string[] } {
    const given = this.explicit ?? this.env.FLEET_AGE_IDENTITY
    if (given) {
      const file = given.startsWith('~/') ? join(this.env.HOME || homedir(), given.slice(2)) : given
      if (!existsSync(file)) throw new UserError(`identity file ${file} does not exist`, 'Pass the path of your age identity or SSH private key.')
      return { files: [file], searched: [file] }
    }
    const searched = adminHomes(this.env).flatMap((h) => SEARCHED.map((f) => join(h.dir, f)))
    return { files: searched.filter((f) => existsSync(f)), searched }
  }
}
