// .fleet/recipients: the admins' public keys (age1… or ssh-ed25519/ssh-rsa lines, # comments)
// that every machine secret is encrypted to. The same format `age -R` reads.
import { nodeCrypto } from '../util/builtin.js'
import { join } from 'node:path'
import { UserError } from '../errors.js'
import type { Paths } from '../repo.js'
import { DataFileRefused, readDataFile } from '../util/data-file.js'
import { writeFileAtomic } from '../util/fsx.js'

export interface Recipient {
  /** "age1…" or "ssh-ed25519 BASE64": what identifies the key (no comment). */
  key: string
  type: 'X25519' | 'ssh-ed25519' | 'ssh-rsa'
  /** The whole line as written, comment included: passed to age and shown in messages. */
  line: string
}

export function recipientsFile(paths: Pick<Paths, 'repo'>): string {
  return join(paths.repo, '.fleet', 'recipients')
}

const AGE_KEY = /^age1[02-9ac-hj-np-z]{58}$/
const SSH_KEY = /^(ssh-ed25519|ssh-rsa) ([A-Za-z0-9+/]+={0,2})(?:\s+(.*))?$/

/** One recipient line, or a message saying why it is not one. */
export function parseRecipient(text: string): Recipient | string {
  const line = text.trim().replace(/\s+/g, ' ')
  if (AGE_KEY.test(line)) return { key: line, type: 'X25519', line }
  const m = SSH_KEY.exec(line)
  if (!m) {
    const shown = line.length > 50 ? `${line.slice(0, 50)}…` : line
    return `"${shown}" is not an age recipient (age1…) or an ssh-ed25519 / ssh-rsa public key`
  }
  const blob = Buffer.from(m[2]!, 'base64')
  // The key blob starts with its own type name (SSH wire format); a pasted key of another type is caught here.
  if (blob.length < 4 + m[1]!.length || blob.subarray(4, 4 + m[1]!.length).toString('latin1') !== m[1]) return `"${m[1]} ${m[2]!.slice(0, 20)}…" is a malformed ${m[1]} key`
  return { key: `${m[1]} ${m[2]}`, type: m[1] as Recipient['type'], line }
}

export function parseRecipients(text: string, file: string): Recipient[] {
  const out: Recipient[] = []
  for (const [i, raw] of text.split('\n').entries()) {
    if (!raw.trim() || raw.trim().startsWith('#')) continue
    const r = parseRecipient(raw)
    if (typeof r === 'string') throw new UserError(`${file} line ${i + 1}: ${r}`, `Fix that line (one age or SSH public key per line), then run the command again.`)
    out.push(r)
  }
  return out
}

/** The recipients, or undefined when the repository has no .fleet/recipients (its keys are not encrypted yet). */
export async function readRecipients(paths: Pick<Paths, 'repo'>): Promise<Recipient[] | undefined> {
  const file = recipientsFile(paths)
  let bytes: Buffer | undefined
  try {
    bytes = await readDataFile(file)
  } catch (e) {
    if (!(e instanceof DataFileRefused)) throw e
    throw new UserError(e.message, `Make ${file} a plain file (restore it from git).`, { cause: e })
  }
  return bytes === undefined ? undefined : parseRecipients(bytes.toString('utf8'), file)
}

const HEADER = `# Admins who can decrypt this fleet's machine secrets (machines/*/*.age): one age
# recipient (age1…) or SSH public key (ssh-ed25519, ssh-rsa) per line. Change it with
# \`fleet secrets add-admin KEY\` / \`fleet secrets remove-admin KEY\`: they re-encrypt every secret.
`

export async function writeRecipients(paths: Pick<Paths, 'repo'>, list: readonly Recipient[]): Promise<void> {
  await writeFileAtomic(recipientsFile(paths), HEADER + list.map((r) => r.line + '\n').join(''))
}

/** The stanza tag age writes for an SSH recipient: base64 of the first 4 bytes of SHA-256 of the key blob. */
export function sshTag(r: Recipient): string | undefined {
  if (r.type === 'X25519') return undefined
  const blob = Buffer.from(r.key.split(' ')[1]!, 'base64')
  return nodeCrypto().createHash('sha256').update(blob).digest().subarray(0, 4).toString('base64').replace(/=+$/, '')
}

/** A short name for messages: the comment if there is one, else the key shortened. */
export function describeRecipient(r: Recipient): string {
  const comment = r.line.slice(r.key.length).trim()
  const short = r.type === 'X25519' ? `${r.key.slice(0, 12)}…${r.key.slice(-6)}` : `${r.type} …${r.key.slice(-12)}`
  return comment ? `${comment} (${short})` : short
}
