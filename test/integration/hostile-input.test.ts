// Hostile input against the real fleet binary, libvirtd and qemu-img: identity files that are
// links, fifos, folders or oversized, bad content in every identity file, mismatched host keys,
// images with external data files, json:/protocol backing names, encryption or a disguised
// format, corrupt channels.json / machine.json / identity.json, prototype names. Each case: exit 2,
// the message names the machine or file and the value, and the repository and the state
// directory are byte for byte (and mode for mode) what they were before.
import { execa } from 'execa'
import { randomUUID } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { blankImage, fleet, sandbox, virsh, type Run } from '../helpers/fleet.js'
import { treeSum } from '../helpers/tree-sum.js'

const sb = sandbox()
const good = sb.name('good')
const goodDir = join(sb.repo, 'machines', good)
const keys = join(sb.dir, 'keys')
const img = join(sb.dir, 'img')
const channels = join(sb.state, 'images', 'channels.json')

type Json = Record<string, unknown>
const sh = (cmd: string, args: string[]) => execa(cmd, args)
const read = (f: string) => readFileSync(f, 'utf8')

/** A definition case: the machine folder (a copy of `good` with its own MAC, UUID, machine-id) is edited, then `create-vm NAME` runs. */
interface DefCase {
  what: string
  edit: (dir: string, json: Json) => void | Promise<void>
  /** Texts the first message line holds besides "machine NAME". */
  says: (dir: string) => string[]
}

/** Writes a file byte for byte. */
const put = (content: string | Buffer) => (f: string) => (dir: string) => writeFileSync(join(dir, f), content)
const mkfifo = (p: string) => sh('mkfifo', [p])
const keyFile = (name: string) => join(keys, name)

/** A copy of `good`'s private key whose seed is changed, so it no longer gives its own public key. */
function tamperedSeed(text: string): string {
  const b64 = text.split('\n').filter((l) => !l.startsWith('-----')).join('')
  const raw = Buffer.from(b64, 'base64')
  const pubBlob = raw.subarray(raw.indexOf('ssh-ed25519') - 4)
  const pub = pubBlob.subarray(19, 51)
  let at = -1
  for (let i = 0; i < 3; i++) at = raw.indexOf(pub, at + 1) // the third copy ends the 64-byte secret
  raw[at - 1]! ^= 0x01 // last byte of the seed
  const lines = raw.toString('base64').match(/.{1,70}/g)!
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`
}

const defCases: DefCase[] = [
  { what: 'hostname is a symlink to /etc/shadow', edit: (d) => (rmSync(join(d, 'hostname')), symlinkSync('/etc/shadow', join(d, 'hostname'))), says: (d) => [`${d}/hostname`, 'symbolic link', '/etc/shadow'] },
  { what: 'machine-id is a relative symlink', edit: (d) => (rmSync(join(d, 'machine-id')), symlinkSync(`../${good}/machine-id`, join(d, 'machine-id'))), says: (d) => [`${d}/machine-id`, 'symbolic link', `../${good}/machine-id`] },
  { what: 'host private key is a symlink to the host\'s key', edit: (d) => (rmSync(join(d, 'ssh_host_ed25519_key')), symlinkSync('/etc/ssh/ssh_host_ed25519_key', join(d, 'ssh_host_ed25519_key'))), says: (d) => [`${d}/ssh_host_ed25519_key`, 'symbolic link', '/etc/ssh/ssh_host_ed25519_key'] },
  { what: 'optional file is a dangling symlink', edit: (d) => (rmSync(join(d, 'user_authorized_keys'), { force: true }), symlinkSync('/nonexistent/keys', join(d, 'user_authorized_keys'))), says: (d) => [`${d}/user_authorized_keys`, 'symbolic link', '/nonexistent/keys'] },
  { what: 'hosts is a fifo', edit: async (d) => (rmSync(join(d, 'hosts')), await mkfifo(join(d, 'hosts'))), says: (d) => [`${d}/hosts`, 'fifo'] },
  { what: 'resolv.conf is a folder', edit: (d) => (rmSync(join(d, 'resolv.conf')), mkdirSync(join(d, 'resolv.conf'))), says: (d) => [`${d}/resolv.conf`, 'folder'] },
  { what: 'tcp_ports over 64 KiB', edit: (d) => put('22\n'.repeat(21846))('tcp_ports')(d), says: (d) => [`${d}/tcp_ports`, '65538 bytes', '65536'] },
  { what: 'machine.json is a symlink to /etc/passwd', edit: (d) => (rmSync(join(d, 'machine.json')), symlinkSync('/etc/passwd', join(d, 'machine.json'))), says: (d) => [`${d}/machine.json`, 'symbolic link', '/etc/passwd'] },
  { what: 'machine.json is a fifo', edit: async (d) => (rmSync(join(d, 'machine.json')), await mkfifo(join(d, 'machine.json'))), says: (d) => [`${d}/machine.json`, 'fifo'] },
  { what: 'machine.json over 64 KiB', edit: (d, j) => put(JSON.stringify(j) + ' '.repeat(70_000))('machine.json')(d), says: (d) => [`${d}/machine.json`, 'bytes', '65536'] },
  { what: 'hostname empty', edit: put('')('hostname'), says: (d) => [`${d}/hostname`, 'hostname is empty'] },
  { what: 'hostname with an underscore', edit: put('web_1\n')('hostname'), says: (d) => [`${d}/hostname`, '"web_1"', 'RFC 1123'] },
  { what: 'hostname label of 64 characters', edit: put(`${'a'.repeat(64)}\n`)('hostname'), says: (d) => [`${d}/hostname`, `"${'a'.repeat(64)}"`] },
  { what: 'hostname of two lines', edit: put('web1\nevil\n')('hostname'), says: (d) => [`${d}/hostname`, 'single line'] },
  { what: 'hostname starting with -', edit: put('-web1\n')('hostname'), says: (d) => [`${d}/hostname`, '"-web1"'] },
  { what: 'hostname over 253 characters', edit: put(`${Array(6).fill('b'.repeat(50)).join('.')}\n`)('hostname'), says: (d) => [`${d}/hostname`, `"${'b'.repeat(50)}.`] },
  { what: 'hostname with a trailing dot', edit: put('web1.\n')('hostname'), says: (d) => [`${d}/hostname`, '"web1."'] },
  { what: 'hostname with CRLF', edit: put('web1\r\n')('hostname'), says: (d) => [`${d}/hostname`, 'control character "\\r"'] },
  { what: 'machine-id all zeros', edit: put(`${'0'.repeat(32)}\n`)('machine-id'), says: (d) => [`${d}/machine-id`, `"${'0'.repeat(32)}"`, 'all zeros'] },
  { what: 'machine-id in upper case', edit: put(`${'AB'.repeat(16)}\n`)('machine-id'), says: (d) => [`${d}/machine-id`, `"${'AB'.repeat(16)}"`] },
  { what: 'machine-id of 31 digits', edit: put(`${'a'.repeat(31)}\n`)('machine-id'), says: (d) => [`${d}/machine-id`, `"${'a'.repeat(31)}"`] },
  { what: 'machine-id of two lines', edit: put(`${'a'.repeat(32)}\n${'b'.repeat(32)}\n`)('machine-id'), says: (d) => [`${d}/machine-id`, 'single line'] },
  { what: 'host key .pub of another key', edit: (d) => cpSync(keyFile('other.pub'), join(d, 'ssh_host_ed25519_key.pub')), says: (d) => [`${d}/ssh_host_ed25519_key.pub`, 'does not match', read(keyFile('other.pub')).split(' ')[1]!] },
  { what: 'host private key is not a key', edit: put('hello\n')('ssh_host_ed25519_key'), says: (d) => [`${d}/ssh_host_ed25519_key`, 'not an OpenSSH private key'] },
  { what: 'host key pair is RSA', edit: (d) => (cpSync(keyFile('rsa'), join(d, 'ssh_host_ed25519_key')), cpSync(keyFile('rsa.pub'), join(d, 'ssh_host_ed25519_key.pub'))), says: (d) => [`${d}/ssh_host_ed25519_key`, '"ssh-rsa"'] },
  { what: 'host private key has a passphrase', edit: (d) => (cpSync(keyFile('locked'), join(d, 'ssh_host_ed25519_key')), cpSync(keyFile('locked.pub'), join(d, 'ssh_host_ed25519_key.pub'))), says: (d) => [`${d}/ssh_host_ed25519_key`, 'encrypted (cipher aes256-ctr)'] },
  { what: 'host private key with a changed seed', edit: (d) => writeFileSync(join(d, 'ssh_host_ed25519_key'), tamperedSeed(read(join(goodDir, 'ssh_host_ed25519_key')))), says: (d) => [`${d}/ssh_host_ed25519_key`, 'seed does not give its public key'] },
  { what: 'host public key not a key', edit: put('hello world\n')('ssh_host_ed25519_key.pub'), says: (d) => [`${d}/ssh_host_ed25519_key.pub`, '"hello"'] },
  { what: 'host public key missing', edit: (d) => rmSync(join(d, 'ssh_host_ed25519_key.pub')), says: (d) => [`${d}/ssh_host_ed25519_key.pub`, 'missing'] },
  { what: 'NUL byte in resolv.conf', edit: put('nameserver 9.9.9.9\0\n')('resolv.conf'), says: (d) => [`${d}/resolv.conf`, 'control character "\\u0000"'] },
  { what: 'hosts not UTF-8', edit: put(Buffer.from([0x31, 0x30, 0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x31, 0x20, 0xff, 0xfe, 0x0a]))('hosts'), says: (d) => [`${d}/hosts`, 'not UTF-8'] },
  { what: 'resolv.conf with an unknown keyword', edit: put('nameservr 9.9.9.9\n')('resolv.conf'), says: (d) => [`${d}/resolv.conf`, '"nameservr"'] },
  { what: 'resolv.conf search domain not a name', edit: put('search exa_mple.com\n')('resolv.conf'), says: (d) => [`${d}/resolv.conf`, '"exa_mple.com"'] },
  { what: 'resolv.conf unknown option', edit: put('options evil\n')('resolv.conf'), says: (d) => [`${d}/resolv.conf`, '"evil"'] },
  { what: 'hosts line with a bad name', edit: put('10.0.0.1 bad_name\n')('hosts'), says: (d) => [`${d}/hosts`, '"bad_name"'] },
  { what: 'authorized keys holding a private key', edit: (d) => cpSync(keyFile('other'), join(d, 'admin_authorized_keys')), says: (d) => [`${d}/admin_authorized_keys`, '"-----BEGIN OPENSSH PRIVATE KEY-----', 'not an SSH public key'] },
  { what: 'machine.json with a __proto__ field', edit: (d, j) => put(JSON.stringify(j).replace(/^\{/, '{"__proto__":{"memory":"64G"},'))('machine.json')(d), says: (d) => [`${d}/machine.json`, 'unknown field "__proto__"'] },
  { what: 'machine.json with a constructor field', edit: (d, j) => put(JSON.stringify({ ...j, constructor: 'x' }))('machine.json')(d), says: (d) => [`${d}/machine.json`, 'unknown field "constructor"'] },
  { what: 'machine.json is an array', edit: put('[1,2]\n')('machine.json'), says: (d) => [`${d}/machine.json`, 'must be a JSON object'] },
  { what: 'machine.json is null', edit: put('null\n')('machine.json'), says: (d) => [`${d}/machine.json`, 'must be a JSON object'] },
  { what: 'machine.json not UTF-8', edit: put(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))('machine.json'), says: (d) => [`${d}/machine.json`, 'not valid JSON', 'not UTF-8'] },
  { what: 'machine.json with vcpus as an object', edit: (d, j) => put(JSON.stringify({ ...j, vcpus: { valueOf: 2 } }))('machine.json')(d), says: (d) => [`${d}/machine.json`, 'vcpus', '{"valueOf":2}'] },
]

interface ImageCase {
  what: string
  /** Makes the file to import; returns extra texts the message must hold. */
  make: (file: string) => Promise<string[]>
}

/** A blank qcow2 (version 3) with some header bytes changed. */
async function patched(file: string, patch: (b: Buffer) => void): Promise<void> {
  await blankImage(file, '16M')
  const b = readFileSync(file)
  patch(b)
  writeFileSync(file, b)
}

/** A LUKS-encrypted qcow2; qemu-img times its PBKDF, which fails now and then on a loaded host ("Unable to get accurate CPU usage"). */
async function luks(f: string): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '--object', 'secret,id=s0,data=pw', '-o', 'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=200', f, '16M'], { reject: i >= 4 })
    if (r.exitCode === 0) return
  }
}

const imageCases: ImageCase[] = [
  { what: 'qcow2 with an external data file', make: async (f) => (await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${img}/host-data.raw`, f, '16M']), ['external data file', `${img}/host-data.raw`]) },
  { what: 'qcow2 with a raw external data file', make: async (f) => (await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${img}/host-data2.raw,data_file_raw=on`, f, '16M']), ['external data file', `${img}/host-data2.raw`]) },
  { what: 'qcow2 with a json: backing name', make: async (f) => (await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', 'json:{"driver":"file","filename":"/etc/shadow"}', '-F', 'raw', f, '16M']), ['json:', '/etc/shadow']) },
  { what: 'qcow2 with an nbd:// backing name', make: async (f) => (await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', 'nbd://127.0.0.1:10809/disk', '-F', 'raw', f, '16M']), ['protocol backing name', 'nbd://127.0.0.1:10809/disk']) },
  { what: 'qcow2 with a plain backing file', make: async (f) => (await blankImage(`${f}.base`), await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', `${f}.base`, '-F', 'qcow2', f]), ['backing file', `${f}.base`]) },
  { what: 'qcow2 encrypted with LUKS', make: async (f) => (await luks(f), ['encrypted (LUKS)']) },
  { what: 'raw disk named .qcow2', make: async (f) => (writeFileSync(f, Buffer.alloc(1024 * 1024, 0x41)), ['is raw, not qcow2', 'hint:qemu-img convert -f raw -O qcow2']) },
  { what: 'raw disk whose first sector is a qcow2 header with a host backing file', make: async (f) => (await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', '/etc/shadow', '-F', 'raw', f, '16M']), ['backing file', '"/etc/shadow"']) },
  { what: 'VMDK image', make: async (f) => (await sh('qemu-img', ['create', '-q', '-f', 'vmdk', f, '16M']), ['VMDK', 'not qcow2']) },
  { what: 'VDI image', make: async (f) => (await sh('qemu-img', ['create', '-q', '-f', 'vdi', f, '16M']), ['VDI', 'not qcow2']) },
  { what: 'qcow2 marked corrupt', make: async (f) => (await patched(f, (b) => (b[79]! |= 0x02)), ['marked corrupt']) },
  { what: 'qcow2 marked dirty', make: async (f) => (await patched(f, (b) => (b[79]! |= 0x01)), ['marked dirty']) },
  { what: 'qcow2 needing an unknown feature', make: async (f) => (await patched(f, (b) => (b[79]! |= 0x40)), ['incompatible', '0x40']) },
  { what: 'qcow2 version 4', make: async (f) => (await patched(f, (b) => b.writeUInt32BE(4, 4)), ['version 4']) },
  { what: 'qcow2 with a data-file feature bit but no name', make: async (f) => (await patched(f, (b) => (b[79]! |= 0x04)), ['external data file']) },
  { what: 'qcow2 cut short after its header', make: async (f) => (await patched(f, () => {}), writeFileSync(f, readFileSync(f).subarray(0, 4096)), ['refused']) },
  { what: 'empty file', make: async (f) => (writeFileSync(f, ''), ['an empty file']) },
  { what: 'fifo', make: async (f) => (await mkfifo(f), ['not a regular file']) },
  { what: 'folder', make: async (f) => (mkdirSync(f), ['folder']) },
]

interface StoreCase {
  what: string
  channels: string | ((good: Json) => string)
  says: string[]
}

const storeCases: StoreCase[] = [
  { what: 'channels.json not JSON', channels: '{"base": {', says: ['not valid JSON'] },
  { what: 'channels.json an array', channels: '[]', says: ['must be a JSON object, got an array'] },
  { what: 'channels.json with a __proto__ key', channels: (g) => `{"__proto__": ${JSON.stringify(g.base)}, "base": ${JSON.stringify(g.base)}}`, says: ['key "__proto__" is not a channel name'] },
  { what: 'channels.json digest not a digest', channels: (g) => JSON.stringify({ base: { ...(g.base as Json), digest: '../../etc/shadow' } }), says: ['channel "base"', '"../../etc/shadow"'] },
  { what: 'channels.json previous not a list', channels: (g) => JSON.stringify({ base: { ...(g.base as Json), previous: 'x' } }), says: ['channel "base"', 'previous "x"'] },
  { what: 'channels.json entry a string', channels: '{"base": "abc"}', says: ['channel "base" must be an object', '"abc"'] },
]

/** The error line (progress lines may come before it). */
const message = (r: Run) => r.stderr.split('\n').find((l) => l.startsWith('Error: ')) ?? r.stderr.split('\n')[0] ?? ''

describe.skipIf(libvirtMissing)('hostile input is refused with exit 2, named, and changes nothing', () => {
  let goodJson: Json = {}
  let goodChannels: Json = {}
  beforeAll(async () => {
    mkdirSync(keys)
    mkdirSync(img)
    await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'other', '-f', keyFile('other')])
    await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-C', 'locked', '-f', keyFile('locked')])
    await sh('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-C', 'rsa', '-f', keyFile('rsa')])
    await blankImage(join(sb.dir, 'base.qcow2'))
    expect((await fleet(sb, ['image', 'import', join(sb.dir, 'base.qcow2'), '--name', 'base'])).code).toBe(0)
    const r = await fleet(sb, ['create-vm', good, '--yes'])
    expect(r.code, r.stderr).toBe(0)
    goodJson = JSON.parse(read(join(goodDir, 'machine.json'))) as Json
    goodChannels = JSON.parse(read(channels)) as Json
  })
  afterAll(async () => {
    await virsh(['undefine', '--nvram', good])
    sb.cleanup()
  })

  /** Runs `args`: exit 2, each of `says` in the error line ("hint:..." in the Try this line), and no change to repo or state. */
  async function refused(args: string[], says: string[], env: Record<string, string> = {}): Promise<string> {
    const before = treeSum(sb.repo, sb.state)
    const r = await fleet({ env: { ...sb.env, ...env } }, args, { timeoutMs: 30_000 })
    const first = message(r)
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(2)
    expect(first, r.stderr).toMatch(/^Error: /)
    const hint = r.stderr.split('\n').find((l) => l.startsWith('Try this: '))
    expect(hint, r.stderr).toBeDefined()
    for (const s of says) {
      if (s.startsWith('hint:')) expect(hint).toContain(s.slice(5))
      else expect(first).toContain(s)
    }
    const after = treeSum(sb.repo, sb.state)
    expect(after.lines, 'repository and state directory unchanged').toEqual(before.lines)
    expect(after.sum).toBe(before.sum)
    return first
  }

  it.each(defCases.map((c, i) => ({ ...c, i })))('definition: $what', async ({ edit, says, i }) => {
    const name = sb.name(`h${i}`)
    const dir = join(sb.repo, 'machines', name)
    cpSync(goodDir, dir, { recursive: true })
    const own: Json = { ...goodJson, mac: `52:54:00:ee:01:${i.toString(16).padStart(2, '0')}`, uuid: randomUUID() }
    writeFileSync(join(dir, 'machine.json'), JSON.stringify(own, null, 2) + '\n')
    writeFileSync(join(dir, 'hostname'), `${name}\n`)
    writeFileSync(join(dir, 'machine-id'), `${randomUUID().replace(/-/g, '')}\n`)
    await edit(dir, own)
    try {
      await refused(['create-vm', name], [`machine ${name}: `, ...says(dir)])
      expect((await virsh(['domstate', name])).code, `domain ${name}`).not.toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true }) // a broken definition would stop every later create-vm
    }
  })

  it.each(imageCases.map((c, i) => ({ ...c, i })))('image import: $what', async ({ make, i }) => {
    const file = join(img, `hostile${i}.qcow2`)
    const says = await make(file)
    await refused(['image', 'import', file, '--name', `evil${i}`], [`image ${file} refused: it `, ...says])
  })

  it.each(storeCases.map((c, i) => ({ ...c, i })))('store: $what', async ({ channels: text, says, i }) => {
    writeFileSync(channels, typeof text === 'string' ? text : text(goodChannels))
    try {
      for (const args of [['image', 'list'], ['create-vm', sb.name(`s${i}`), '--yes']]) {
        await refused(args, [`${channels} is corrupt: `, ...says])
      }
    } finally {
      writeFileSync(channels, JSON.stringify(goodChannels, null, 2) + '\n')
    }
  })

  it('channels.json that is a symlink is refused, naming it', async () => {
    writeFileSync(join(sb.dir, 'elsewhere.json'), JSON.stringify(goodChannels))
    rmSync(channels)
    symlinkSync(join(sb.dir, 'elsewhere.json'), channels)
    try {
      await refused(['image', 'list'], [channels, 'symbolic link', join(sb.dir, 'elsewhere.json')])
    } finally {
      rmSync(channels)
      writeFileSync(channels, JSON.stringify(goodChannels, null, 2) + '\n')
    }
  })

  it('identity.json that is corrupt is refused by upgrade --dry-run, naming it', async () => {
    const manifest = join(sb.state, 'vms', good, 'identity.json')
    const saved = readFileSync(manifest)
    for (const [text, says] of [['{"hostname": 5}', ['hostname', '5', 'not a sha256']], ['{"../../etc/passwd": "x"}', ['"../../etc/passwd" is not an identity file name']], ['nope', ['not valid JSON']]] as const) {
      writeFileSync(manifest, text)
      try {
        await refused(['upgrade', good, '--dry-run'], [`${manifest} is corrupt: `, ...says])
      } finally {
        writeFileSync(manifest, saved)
      }
    }
  })

  it('prototype names: --name __proto__ and a machine called __proto__ are refused; --base constructor has no image', async () => {
    await refused(['image', 'import', join(sb.dir, 'base.qcow2'), '--name', '__proto__'], ['"__proto__"'])
    await refused(['create-vm', '__proto__', '--yes'], ['machine ', 'name "__proto__"', 'not a hostname label'])
    await refused(['create-vm', sb.name('ctor'), '--base', 'constructor', '--yes'], ['base channel "constructor" has no x86_64 image'])
  })

  it('a channel called constructor works like any other', async () => {
    const r = await fleet(sb, ['image', 'import', join(sb.dir, 'base.qcow2'), '--name', 'constructor', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const listed = await fleet(sb, ['image', 'list', '--json'])
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.stdout).toContain('"constructor"')
    const saved = JSON.parse(read(channels)) as Record<string, { digest: string }>
    expect(Object.keys(saved).sort()).toEqual(['base', 'constructor'])
    expect(saved.constructor!.digest).toBe(saved.base!.digest)
    const dry = await fleet(sb, ['create-vm', sb.name('ctor2'), '--base', 'constructor', '--yes', '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
  })

  it('HOST_CMD set is refused as removed, before anything runs', async () => {
    const first = await refused(['image', 'import', join(sb.dir, 'base.qcow2'), '--name', 'base'], ['HOST_CMD', '"ssh evil.example"', 'no longer supports'], { HOST_CMD: 'ssh evil.example' })
    expect(first).not.toContain('not installed')
  })

  it('has at least 40 cases that must exit 2', () => {
    expect(defCases.length + imageCases.length + storeCases.length).toBeGreaterThanOrEqual(40)
    expect(existsSync(join(sb.state, 'vms', good, 'var.qcow2'))).toBe(true)
  })
})
