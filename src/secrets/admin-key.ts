// The admin's own public key, for .fleet/recipients: from an identity they already have, or
// from a new age identity fleet makes for them in ~/.config/fleet/identity.txt.
import { existsSync } from 'node:fs'
import { chown, mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import * as age from '../adapters/age.js'
import { UserError } from '../errors.js'
import type { Env } from '../util/env.js'
import { adminHomes, FLEET_IDENTITY, Keyring } from './identities.js'
import { parseRecipient, type Recipient } from './recipients.js'

/** The public key of an identity file: age-keygen -y for an age identity, FILE.pub for an SSH key. */
export async function recipientOfIdentity(file: string): Promise<Recipient> {
  const text = await readFile(file, 'utf8')
  let line: string
  if (/^AGE-SECRET-KEY-1/m.test(text)) line = await age.recipientOf(file)
  else if (existsSync(`${file}.pub`)) line = (await readFile(`${file}.pub`, 'utf8')).trim()
  else throw new UserError(`identity ${file} has no ${file}.pub beside it, so its public key is unknown`, `Write it: ssh-keygen -y -f ${file} > ${file}.pub`)
  const r = parseRecipient(line)
  if (typeof r === 'string') throw new UserError(`identity ${file}: its public key ${r}`, 'Use an age identity or an ed25519/RSA SSH key.')
  return r
}

/** The admin's recipient; with no identity anywhere, a new age identity is made (and said so). */
export async function adminRecipient(keyring: Keyring, log: (l: string) => void, env: Env = process.env): Promise<{ recipient: Recipient; identity: string; generated: boolean }> {
  let files: string[]
  try {
    files = keyring.identities().files
  } catch (e) {
    if (!(e instanceof UserError) || env.FLEET_AGE_IDENTITY) throw e
    files = []
  }
  if (files.length) return { recipient: await recipientOfIdentity(files[0]!), identity: files[0]!, generated: false }
  const home = adminHomes(env)[0]!
  const file = join(home.dir, FLEET_IDENTITY)
  await mkdir(dirname(file), { recursive: true, mode: 0o700 })
  await age.generateIdentity(file)
  // Under sudo the key is the admin's, not root's.
  if (home.uid !== undefined) for (const p of [dirname(dirname(file)), dirname(file), file]) await chown(p, home.uid, home.gid!)
  log(`No age identity or SSH key found; made one: ${file}. Back it up: without it (or another admin) this fleet's host keys cannot be decrypted.`)
  return { recipient: await recipientOfIdentity(file), identity: file, generated: true }
}
