// age (age-encryption.org/v1, Debian's `age` and `age-keygen`): machine secrets encrypted to the
// admins' age or SSH public keys. Plaintext goes in on stdin and comes back on stdout, so it
// never lands in a file; the ciphertext is ASCII-armored (a text file in git).
import { run, tryRun } from './exec.js'

const AGE = ['age']
const AGE_KEYGEN = ['age-keygen']

/** `plaintext` encrypted to every recipient (age1…, ssh-ed25519 or ssh-rsa public key lines). */
export async function encrypt(plaintext: Buffer, recipients: readonly string[]): Promise<string> {
  const r = await run(AGE, ['--encrypt', '--armor', ...recipients.flatMap((k) => ['--recipient', k])], { input: plaintext })
  return r.stdout
}

export type Decrypted = { ok: true; plaintext: Buffer } | { ok: false; noMatch: boolean; error: string }

/**
 * Decrypts with the identity files (age identities or SSH private keys). Not a ToolError when
 * it fails: no matching identity and a damaged file are both for the admin to fix.
 */
export async function decrypt(ciphertext: Buffer, identities: readonly string[]): Promise<Decrypted> {
  const r = await tryRun(AGE, ['--decrypt', ...identities.flatMap((i) => ['--identity', i])], { input: ciphertext })
  if (r.exitCode === 0) return { ok: true, plaintext: Buffer.from(r.stdout, 'utf8') }
  const error = r.stderr.split('\n').filter((l) => l.startsWith('age: error:')).map((l) => l.replace(/^age: error:\s*/, '')).join('; ') || r.stderr.trim()
  return { ok: false, noMatch: /no identity matched/.test(r.stderr), error }
}

/** The age1… recipient of an age identity file. */
export async function recipientOf(identityFile: string): Promise<string> {
  return (await run(AGE_KEYGEN, ['-y', identityFile])).stdout.trim()
}

/** A new age identity at `file` (0600; age-keygen refuses to overwrite). */
export async function generateIdentity(file: string): Promise<void> {
  await run(AGE_KEYGEN, ['-o', file])
}
