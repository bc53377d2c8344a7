// Machine secrets without any tool: the recipients file, age headers, in-memory host keys.
import { describe, expect, it } from 'vitest'
import { checkHostKeyPair, generateHostKeyPair } from '../../src/machines/host-key.js'
import { describeStanzas, stanzasOf } from '../../src/secrets/age-header.js'
import { parseRecipient, parseRecipients, sshTag, type Recipient } from '../../src/secrets/recipients.js'

const ED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKC1Z5/brHc0A8Yn32fkYrhUEBWx7Q8WrynL/1zF7Lbd'
const AGE = 'age17p58ascsj2r3jz482y6qrgkk4ancw6pexenrplj3m8rcyx8phq8sxysfj4'

describe('.fleet/recipients', () => {
  it('takes age and SSH keys with comments, skips comments and blanks', () => {
    const list = parseRecipients(`# admins\n\n${ED} alice@laptop\n${AGE}\n`, 'f')
    expect(list.map((r) => [r.type, r.key])).toEqual([['ssh-ed25519', ED], ['X25519', AGE]])
    expect(list[0]!.line).toBe(`${ED} alice@laptop`)
  })
  it('refuses anything else, naming the file and line', () => {
    expect(() => parseRecipients(`${ED}\nssh-dss AAAA bob\n`, '/r/.fleet/recipients')).toThrow(/\/r\/\.fleet\/recipients line 2: "ssh-dss AAAA bob" is not an age recipient/)
    expect(parseRecipient('age1short')).toMatch(/not an age recipient/)
    // An ed25519 label on an RSA blob (a pasted key of the wrong type).
    expect(parseRecipient('ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ')).toMatch(/malformed ssh-ed25519 key/)
  })
})

describe('age header', () => {
  const header = (stanzas: string[]) => Buffer.from(`age-encryption.org/v1\n${stanzas.map((s) => `-> ${s}\nQUJD\n`).join('')}--- MAC\n`, 'latin1')
  const ed = parseRecipient(`${ED} alice@laptop`) as Recipient
  const age = parseRecipient(AGE) as Recipient

  it('reads the stanzas of binary and armored files', () => {
    const bin = header([`ssh-ed25519 ${sshTag(ed)} X`, 'X25519 Y'])
    const armored = Buffer.from(`-----BEGIN AGE ENCRYPTED FILE-----\n${bin.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END AGE ENCRYPTED FILE-----\n`)
    for (const f of [bin, armored]) expect(stanzasOf(f)!.map((s) => s.type)).toEqual(['ssh-ed25519', 'X25519'])
    expect(stanzasOf(Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\n'))).toBeUndefined()
  })
  it('names SSH recipients by their tag and counts anonymous age ones', () => {
    const named = describeStanzas(stanzasOf(header([`ssh-ed25519 ${sshTag(ed)} X`, 'ssh-ed25519 AAAAAA X', 'X25519 Y']))!, [ed, age])
    expect(named[0]).toMatch(/^alice@laptop \(ssh-ed25519 …/)
    expect(named[1]).toMatch(/tag AAAAAA that is not in \.fleet\/recipients/)
    expect(named[2]).toMatch(/^1 age \(X25519\) key .*age17p58ascs/)
  })
})

describe('host key made in memory', () => {
  it('is an unencrypted OpenSSH ed25519 key whose .pub matches', () => {
    const a = generateHostKeyPair('root@web1')
    const b = generateHostKeyPair('root@web1')
    expect(checkHostKeyPair(a.privateKey, a.publicKey)).toBeUndefined()
    expect(a.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\S+ root@web1\n$/)
    expect(a.privateKey).not.toBe(b.privateKey)
    expect(checkHostKeyPair(a.privateKey, b.publicKey)?.msg).toMatch(/does not match/)
  })
})
