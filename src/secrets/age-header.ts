// Who an age file was encrypted to, from its header alone (no key needed): SSH recipients are
// named by a tag of their public key; X25519 (age1…) recipients are anonymous by design, so only
// their number is known.
import type { Recipient } from './recipients.js'
import { describeRecipient, sshTag } from './recipients.js'

export interface Stanza {
  type: string
  args: string[]
}

/** The recipient stanzas of an armored (or binary) age file; undefined if it is not one. */
export function stanzasOf(file: Buffer): Stanza[] | undefined {
  let text = file.toString('latin1')
  const armor = /-----BEGIN AGE ENCRYPTED FILE-----([\s\S]*?)-----END AGE ENCRYPTED FILE-----/.exec(text)
  if (armor) text = Buffer.from(armor[1]!.replace(/\s+/g, ''), 'base64').toString('latin1')
  const lines = text.split('\n')
  if (lines[0] !== 'age-encryption.org/v1') return undefined
  const out: Stanza[] = []
  for (const l of lines.slice(1)) {
    if (l.startsWith('---')) return out
    if (l.startsWith('-> ')) {
      const [type, ...args] = l.slice(3).split(' ')
      out.push({ type: type!, args })
    }
  }
  return undefined
}

/** Each recipient of the file, named from `known` (.fleet/recipients) where the header allows it. */
export function describeStanzas(stanzas: readonly Stanza[], known: readonly Recipient[]): string[] {
  const out: string[] = []
  const ages = known.filter((r) => r.type === 'X25519')
  let x25519 = 0
  for (const s of stanzas) {
    if (s.type === 'X25519') x25519++
    else if (s.type === 'ssh-ed25519' || s.type === 'ssh-rsa') {
      const r = known.find((k) => k.type === s.type && sshTag(k) === s.args[0])
      out.push(r ? describeRecipient(r) : `an ${s.type} key with tag ${s.args[0]} that is not in .fleet/recipients`)
    } else out.push(`a ${s.type} recipient`)
  }
  if (x25519) {
    const which = ages.length ? `; the age keys in .fleet/recipients are ${ages.map(describeRecipient).join(', ')}` : ''
    out.push(`${x25519} age (X25519) key${x25519 > 1 ? 's' : ''} (anonymous in the file${which})`)
  }
  return out
}
