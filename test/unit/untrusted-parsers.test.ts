// The parsers that read untrusted bytes: qcow2 headers, host key pairs, channels.json, identity
// file content checks. Plain inputs; the integration suite drives the same through the binary.
import { execaSync } from 'execa'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { checkHostKeyPair, parsePrivateKey, parsePublicKey } from '../../src/machines/host-key.js'
import { checkHostname, checkHostsLine, checkMachineId, checkResolvLine, checkText } from '../../src/machines/validate.js'
import { parseChannels } from '../../src/store/channels-file.js'
import { parseQcow2Header, refuseHeader } from '../../src/store/qcow2-header.js'

const dir = mkdtempSync(join(tmpdir(), 'fleet-unit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A qcow2 v3 header: 104 bytes, then header extensions, then an optional backing name. */
function header(opts: { incompatible?: bigint; crypt?: number; backing?: string; dataFile?: string } = {}): Buffer {
  const b = Buffer.alloc(4096)
  b.writeUInt32BE(0x514649fb, 0)
  b.writeUInt32BE(3, 4)
  b.writeUInt32BE(16, 20)
  b.writeUInt32BE(opts.crypt ?? 0, 32)
  b.writeBigUInt64BE(opts.incompatible ?? 0n, 72)
  b.writeUInt32BE(104, 100)
  let at = 104
  if (opts.dataFile) {
    b.writeUInt32BE(0x44415441, at)
    b.writeUInt32BE(opts.dataFile.length, at + 4)
    b.write(opts.dataFile, at + 8, 'latin1')
    at += 8 + Math.ceil(opts.dataFile.length / 8) * 8
  }
  b.writeUInt32BE(0, at) // end of extensions
  if (opts.backing) {
    b.writeBigUInt64BE(1024n, 8)
    b.writeUInt32BE(opts.backing.length, 16)
    b.write(opts.backing, 1024, 'latin1')
  }
  return b
}

const refused = (b: Buffer) => {
  const h = parseQcow2Header(b)
  return typeof h === 'string' ? h : refuseHeader(h)
}

describe('qcow2 header of an untrusted image', () => {
  it('accepts a plain v3 header, compressed (zstd) too', () => {
    expect(refused(header())).toBeUndefined()
    expect(refused(header({ incompatible: 8n }))).toBeUndefined()
  })
  it('names every reason to refuse', () => {
    expect(refused(header({ backing: 'json:{"driver":"file","filename":"/etc/shadow"}' }))).toMatch(/json: pseudo-protocol.*\/etc\/shadow/)
    expect(refused(header({ backing: 'https://example.com/x.img' }))).toMatch(/protocol backing name.*https:/)
    expect(refused(header({ backing: '../base.qcow2' }))).toMatch(/a backing file: "..\/base.qcow2"/)
    expect(refused(header({ incompatible: 4n, dataFile: '/dev/sda' }))).toMatch(/external data file "\/dev\/sda"/)
    expect(refused(header({ dataFile: '/etc/shadow' }))).toMatch(/external data file "\/etc\/shadow"/)
    expect(refused(header({ crypt: 1 }))).toMatch(/encrypted \(AES\)/)
    expect(refused(header({ incompatible: 2n }))).toMatch(/marked corrupt/)
    expect(refused(header({ incompatible: 1n << 9n }))).toMatch(/0x200/)
    expect(refused(Buffer.from('KDMV' + '\0'.repeat(100)))).toMatch(/VMDK/)
    expect(refused(Buffer.alloc(0))).toMatch(/empty file/)
    expect(refused(Buffer.alloc(512, 0x41))).toMatch(/is raw, not qcow2/)
  })
  it('reads what qemu-img writes', () => {
    const f = join(dir, 'df.qcow2')
    execaSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${join(dir, 'df.raw')}`, f, '1M'])
    expect(refused(readFileSync(f))).toContain(join(dir, 'df.raw'))
  })
})

describe('SSH host key pair', () => {
  const gen = (name: string, pass = '') => {
    execaSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', pass, '-C', name, '-f', join(dir, name)])
    return { priv: readFileSync(join(dir, name), 'utf8'), pub: readFileSync(join(dir, `${name}.pub`), 'utf8') }
  }
  const a = gen('a')
  const b = gen('b')
  it('accepts a pair ssh-keygen made and derives the same public key', () => {
    expect(checkHostKeyPair(a.priv, a.pub)).toBeUndefined()
    expect(parsePrivateKey(a.priv)).toEqual(parsePublicKey(a.pub))
  })
  it('refuses a mismatched, encrypted or malformed pair, naming the file', () => {
    expect(checkHostKeyPair(a.priv, b.pub)).toMatchObject({ file: 'ssh_host_ed25519_key.pub', msg: expect.stringContaining('does not match') })
    expect(checkHostKeyPair(gen('c', 'pw').priv, a.pub)).toMatchObject({ file: 'ssh_host_ed25519_key', msg: expect.stringContaining('encrypted') })
    expect(checkHostKeyPair('nope', a.pub)?.file).toBe('ssh_host_ed25519_key')
    expect(checkHostKeyPair(a.priv, `${a.pub}${b.pub}`)?.msg).toContain('exactly one key line')
  })
})

describe('channels.json read back', () => {
  const d = 'a'.repeat(64)
  it('has no prototype: "constructor" is absent, "__proto__" is refused', () => {
    const c = parseChannels('/s/channels.json', JSON.stringify({ base: { digest: d, updated: 'x', previous: [] } }))
    expect(c.constructor).toBeUndefined()
    expect(Object.getPrototypeOf(c)).toBeNull()
    expect(() => parseChannels('/s/channels.json', `{"__proto__": {"digest": "${d}", "updated": "x", "previous": []}}`)).toThrow(/key "__proto__"/)
  })
  it('names the entry that is wrong', () => {
    expect(() => parseChannels('/s/channels.json', '{"base@riscv": {}}')).toThrow(/\/s\/channels.json is corrupt: key "base@riscv"/)
    expect(() => parseChannels('/s/channels.json', `{"base": {"digest": "${d}", "updated": "x", "previous": ["zz"]}}`)).toThrow(/previous digest "zz"/)
  })
})

describe('identity file content', () => {
  it('hostname per RFC 1123', () => {
    for (const ok of ['web1', 'web-1.example.com', 'A1', `${'a'.repeat(63)}`]) expect(checkHostname(ok), ok).toBeUndefined()
    for (const bad of ['', 'web_1', '-web', 'web-', 'web..x', 'web.', `${'a'.repeat(64)}`, 'a b', `${'a.'.repeat(127)}a`]) expect(checkHostname(bad), bad).toBeDefined()
  })
  it('machine-id: 32 lowercase hex digits, not all zeros', () => {
    expect(checkMachineId('0123456789abcdef0123456789abcdef')).toBeUndefined()
    expect(checkMachineId('0'.repeat(32))).toContain('all zeros')
    expect(checkMachineId('0123456789ABCDEF0123456789ABCDEF')).toBeDefined()
  })
  it('resolv.conf and hosts lines', () => {
    for (const ok of ['nameserver 9.9.9.9', 'nameserver 2620:fe::fe', 'search example.com corp.example.', 'options ndots:2 edns0', 'domain example.com']) expect(checkResolvLine(ok), ok).toBeUndefined()
    for (const bad of ['nameserver dns.example', 'nameserver', 'options evil', 'search bad_domain', 'include /etc/shadow']) expect(checkResolvLine(bad), bad).toBeDefined()
    expect(checkHostsLine('10.0.0.5 db db.example # the database')).toBeUndefined()
    expect(checkHostsLine('10.0.0.5 bad_name')).toContain('"bad_name"')
  })
  it('text only: UTF-8 without control characters', () => {
    expect(checkText(Buffer.from('web1\n'))).toBeUndefined()
    expect(checkText(Buffer.from('web1\r\n'))).toContain('"\\r"')
    expect(checkText(Buffer.from([0xff]))).toContain('not UTF-8')
    expect(checkText(Buffer.from('a\u0000b'))).toContain('"\\u0000" at offset 1')
  })
})
