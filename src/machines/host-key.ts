// The machine's SSH host key pair, checked without any tool: the private key must be an
// unencrypted OpenSSH ed25519 key whose seed really gives the public key in the .pub file.
import { nodeCrypto } from '../util/builtin.js'

const MAGIC = Buffer.from('openssh-key-v1\0', 'latin1')
const ED25519 = 'ssh-ed25519'
// PKCS#8 wrapping of a raw 32-byte ed25519 seed (RFC 8410), so node:crypto can derive the public key.
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')

/** Reads SSH wire-format strings (uint32 length + bytes) from a buffer. */
class Reader {
  private pos = 0
  constructor(private readonly buf: Buffer) {}
  u32(): number {
    if (this.pos + 4 > this.buf.length) throw new Error('truncated')
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }
  bytes(): Buffer {
    const n = this.u32()
    if (this.pos + n > this.buf.length) throw new Error('truncated')
    const b = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return b
  }
  string(): string {
    return this.bytes().toString('latin1')
  }
  get done(): boolean {
    return this.pos === this.buf.length
  }
}

/** The 32-byte key from an ssh-ed25519 public key blob, or a message. */
function ed25519FromBlob(blob: Buffer): Buffer | string {
  try {
    const r = new Reader(blob)
    const type = r.string()
    if (type !== ED25519) return `is a ${JSON.stringify(type)} key, not ${ED25519}`
    const key = r.bytes()
    if (key.length !== 32 || !r.done) return 'holds a malformed ssh-ed25519 key'
    return key
  } catch {
    return 'holds a malformed ssh-ed25519 key'
  }
}

/** The public key of `ssh_host_ed25519_key.pub` ("ssh-ed25519 BASE64 [comment]"), or a message. */
export function parsePublicKey(text: string): Buffer | string {
  const lines = text.split('\n').filter((l) => l.trim())
  if (lines.length !== 1) return `must hold exactly one key line, has ${lines.length}`
  const [type, b64] = lines[0]!.trim().split(/\s+/)
  if (type !== ED25519) return `key type "${type}" is not ${ED25519}`
  if (!b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return `key "${(b64 ?? '').slice(0, 40)}" is not base64`
  return ed25519FromBlob(Buffer.from(b64, 'base64'))
}

/** The public key the OpenSSH private key `text` holds (derived from its seed), or a message. */
export function parsePrivateKey(text: string): Buffer | string {
  const m = /^-----BEGIN OPENSSH PRIVATE KEY-----\n([A-Za-z0-9+/=\n]+)-----END OPENSSH PRIVATE KEY-----\n?$/.exec(text.replace(/\r\n/g, '\n'))
  if (!m) return 'is not an OpenSSH private key (no "BEGIN OPENSSH PRIVATE KEY" block)'
  const raw = Buffer.from(m[1]!.replace(/\n/g, ''), 'base64')
  if (!raw.subarray(0, MAGIC.length).equals(MAGIC)) return 'is not an openssh-key-v1 private key'
  try {
    const r = new Reader(raw.subarray(MAGIC.length))
    const cipher = r.string()
    r.string() // kdf name
    r.bytes() // kdf options
    if (cipher !== 'none') return `is encrypted (cipher ${cipher}); sshd needs it without a passphrase`
    if (r.u32() !== 1) return 'must hold exactly one key'
    const pub = ed25519FromBlob(r.bytes())
    if (typeof pub === 'string') return pub
    const priv = new Reader(r.bytes())
    if (priv.u32() !== priv.u32()) return 'is corrupt (check words differ)'
    if (priv.string() !== ED25519) return `is not an ${ED25519} key`
    const pub2 = priv.bytes()
    const secret = priv.bytes()
    if (!pub2.equals(pub) || secret.length !== 64 || !secret.subarray(32).equals(pub)) return 'is corrupt (its public halves disagree)'
    const derived = nodeCrypto().createPublicKey(nodeCrypto().createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, secret.subarray(0, 32)]), format: 'der', type: 'pkcs8' }))
      .export({ format: 'der', type: 'spki' })
      .subarray(-32)
    if (!derived.equals(pub)) return 'is corrupt (its seed does not give its public key)'
    return pub
  } catch {
    return 'is corrupt (truncated key data)'
  }
}

/** A message when the pair is unusable or the two files do not belong together. */
export function checkHostKeyPair(privateText: string, publicText: string): { file: 'ssh_host_ed25519_key' | 'ssh_host_ed25519_key.pub'; msg: string } | undefined {
  const priv = parsePrivateKey(privateText)
  if (typeof priv === 'string') return { file: 'ssh_host_ed25519_key', msg: `host private key ${priv}` }
  const pub = parsePublicKey(publicText)
  if (typeof pub === 'string') return { file: 'ssh_host_ed25519_key.pub', msg: `host public key ${pub}` }
  if (!pub.equals(priv)) {
    return { file: 'ssh_host_ed25519_key.pub', msg: `host public key "${publicKeyLine(pub)}" does not match the private key in ssh_host_ed25519_key (its public key is "${publicKeyLine(priv)}")` }
  }
  return undefined
}

/** SSH wire-format string: uint32 length + bytes. */
function sshString(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b, 'latin1') : b
  const len = Buffer.alloc(4)
  len.writeUInt32BE(data.length)
  return Buffer.concat([len, data])
}

/** The .pub line of a 32-byte ed25519 public key: "ssh-ed25519 BASE64[ comment]". */
export function publicKeyLine(key: Buffer, comment = ''): string {
  return `${ED25519} ${Buffer.concat([sshString(ED25519), sshString(key)]).toString('base64')}${comment ? ` ${comment}` : ''}`
}

/**
 * A new ed25519 host key pair made in memory (what `ssh-keygen -t ed25519 -N ''` writes, without
 * a file): the unencrypted OpenSSH private key and its .pub line, both ending in a newline.
 */
export function generateHostKeyPair(comment: string): { privateKey: string; publicKey: string } {
  const { publicKey, privateKey } = nodeCrypto().generateKeyPairSync('ed25519')
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32)
  const blob = Buffer.concat([sshString(ED25519), sshString(pub)])
  const check = nodeCrypto().randomBytes(4)
  let priv = Buffer.concat([check, check, sshString(ED25519), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)])
  const pad = (8 - (priv.length % 8)) % 8
  priv = Buffer.concat([priv, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))])
  const one = Buffer.alloc(4)
  one.writeUInt32BE(1)
  const raw = Buffer.concat([MAGIC, sshString('none'), sshString('none'), sshString(''), one, sshString(blob), sshString(priv)])
  const b64 = raw.toString('base64').match(/.{1,70}/g)!.join('\n')
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `${publicKeyLine(pub, comment)}\n`,
  }
}
