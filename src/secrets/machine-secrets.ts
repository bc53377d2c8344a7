// Secret identity files of a machine (its SSH host private key) are kept in git as NAME.age,
// encrypted to .fleet/recipients. Decrypted only in memory, when a /var disk is written.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import * as age from '../adapters/age.js'
import { UserError } from '../errors.js'
import { describeStanzas, stanzasOf } from './age-header.js'
import type { Keyring } from './identities.js'
import type { Recipient } from './recipients.js'

/** Identity files that never appear in the repository as plaintext once it has .fleet/recipients. */
export const SECRET_FILES: readonly string[] = ['ssh_host_ed25519_key']

export const encryptedName = (file: string): string => `${file}.age`

/** Which form of a secret identity file a machine folder holds (a killed migrate can leave both: the .age wins). */
export function secretForm(dir: string, file: string): 'encrypted' | 'plaintext' | 'missing' {
  if (existsSync(join(dir, encryptedName(file)))) return 'encrypted'
  return existsSync(join(dir, file)) ? 'plaintext' : 'missing'
}

/**
 * The plaintext of machines/NAME/FILE.age. Fails with exit 2, naming the machine, the file and
 * who it was encrypted to, when none of the admin's identities is among its recipients.
 */
export async function decryptSecret(machine: string, dir: string, file: string, ciphertext: Buffer, keyring: Keyring, known: readonly Recipient[]): Promise<Buffer> {
  const path = join(dir, encryptedName(file))
  const stanzas = stanzasOf(ciphertext)
  if (!stanzas) throw new UserError(`machine ${machine}: ${path} is not an age-encrypted file`, `Restore it from git (git checkout -- ${path}).`)
  const ids = keyring.identities()
  const r = await age.decrypt(ciphertext, ids.files)
  if (r.ok) return r.plaintext
  const to = describeStanzas(stanzas, known).join('; ')
  if (r.noMatch) {
    throw new UserError(`machine ${machine}: cannot decrypt ${path}: it is encrypted to ${to}; none of your keys (${ids.files.join(', ')}) is one of them. Nothing was changed`,
      'Ask an admin on that list to run `fleet secrets add-admin YOUR_PUBLIC_KEY` and push, or pass --identity / set FLEET_AGE_IDENTITY to a key on the list.')
  }
  throw new UserError(`machine ${machine}: cannot decrypt ${path} (encrypted to ${to}): ${r.error}. Nothing was changed`,
    `Check the identity (${ids.files.join(', ')}): a passphrase-protected key needs a terminal. If the file is damaged, restore it from git.`)
}

/** `plaintext` encrypted to every recipient (armored text). */
export async function encryptSecret(plaintext: Buffer, recipients: readonly Recipient[]): Promise<string> {
  if (!recipients.length) throw new UserError('.fleet/recipients lists no key, so nobody could decrypt the machine secrets', 'Add your public key: fleet secrets add-admin ~/.ssh/id_ed25519.pub')
  return age.encrypt(plaintext, recipients.map((r) => r.line))
}
