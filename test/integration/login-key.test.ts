// fleet's zero-configuration login key pair (<state>/ssh/id_ed25519): made once under a lock when
// several first create-vms race, and repaired when a kill or a hand left only one half of it.
import { execa } from 'execa'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { generateHostKeyPair, parsePrivateKey, parsePublicKey } from '../../src/machines/host-key.js'
import { defaultAdminLogin } from '../../src/services/login-key.js'
import { UserError } from '../../src/errors.js'
import { ROOT } from '../helpers/fleet.js'

const dir = mkdtempSync(join(tmpdir(), 'fleet-test-login-key-'))
const home = join(dir, 'home') // no ~/.ssh: fleet's own pair is the login
mkdirSync(home)
const env = { HOME: home }
let n = 0
const freshState = () => join(dir, `state${n++}`)
const files = (state: string) => ({ priv: join(state, 'ssh', 'id_ed25519'), pub: join(state, 'ssh', 'id_ed25519.pub') })
/** The pair on disk belongs together: the .pub's key is the one the private key's seed gives. */
const pairMatches = (state: string) => {
  const { priv, pub } = files(state)
  const a = parsePrivateKey(readFileSync(priv, 'utf8'))
  const b = parsePublicKey(readFileSync(pub, 'utf8'))
  return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b)
}

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("fleet's login key pair", () => {
  it('four processes asking at once for the first time: one pair, made once, used by all', async () => {
    const state = freshState()
    const go = join(dir, 'go')
    const loginKey = join(ROOT, 'dist', 'services', 'login-key.js')
    // Each racer says it is ready, waits for the start signal, then asks for the login.
    const script = `import { existsSync, writeFileSync } from 'node:fs'
const { defaultAdminLogin } = await import(${JSON.stringify(loginKey)})
writeFileSync(process.env.READY, '')
while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 1))
process.stdout.write(JSON.stringify(await defaultAdminLogin({ state: ${JSON.stringify(state)} }, false, { HOME: ${JSON.stringify(home)} })))`
    const racers = [0, 1, 2, 3].map((i) => execa('node', ['--input-type=module', '-e', script], { env: { READY: join(dir, `ready${i}`) } }))
    while ([0, 1, 2, 3].some((i) => !existsSync(join(dir, `ready${i}`)))) await new Promise((r) => setTimeout(r, 5))
    writeFileSync(go, '')
    const logins = (await Promise.all(racers)).map((r) => JSON.parse(String(r.stdout)) as { source: string; key: string; created: boolean })
    expect(logins.every((l) => l.source === 'fleet')).toBe(true)
    expect(new Set(logins.map((l) => l.key)).size, 'every racer got the same key').toBe(1)
    expect(logins.filter((l) => l.created)).toHaveLength(1)
    const { priv, pub } = files(state)
    expect(readFileSync(pub, 'utf8').trim()).toBe(logins[0]!.key)
    expect(pairMatches(state)).toBe(true)
    expect(statSync(priv).mode & 0o777).toBe(0o600)
    expect(statSync(join(state, 'ssh')).mode & 0o777).toBe(0o700)
    expect(readdirSync(join(state, 'ssh')).sort(), 'no temp files left').toEqual(['id_ed25519', 'id_ed25519.pub'])
  }, 60_000)

  it('a private key without its .pub gets the .pub back, derived from it (as ssh-keygen -y does); the key stays', async () => {
    const state = freshState()
    const { priv, pub } = files(state)
    mkdirSync(join(state, 'ssh'), { recursive: true, mode: 0o700 })
    writeFileSync(priv, generateHostKeyPair('fleet-admin').privateKey, { mode: 0o600 })
    const before = readFileSync(priv, 'utf8')
    // "ssh-ed25519 BASE64" (newer ssh-keygen adds the key's comment).
    const fromSshKeygen = String((await execa('ssh-keygen', ['-y', '-f', priv])).stdout).trim().split(' ').slice(0, 2).join(' ')
    // A dry run names the key it would use and writes nothing.
    const dry = await defaultAdminLogin({ state }, true, env)
    expect(dry.key.split(' ').slice(0, 2).join(' ')).toBe(fromSshKeygen)
    expect(existsSync(pub)).toBe(false)
    const l = await defaultAdminLogin({ state }, false, env)
    expect(l).toMatchObject({ source: 'fleet', file: pub, created: true })
    expect(l.key).toBe(`${fromSshKeygen} fleet-admin`)
    expect(readFileSync(pub, 'utf8')).toBe(`${l.key}\n`)
    expect(readFileSync(priv, 'utf8')).toBe(before)
    // From now on the pair is simply used.
    expect(await defaultAdminLogin({ state }, false, env)).toMatchObject({ key: l.key, created: false })
  })

  it('a .pub without its private key (killed between the two writes) is replaced by a new pair', async () => {
    const state = freshState()
    const { priv, pub } = files(state)
    mkdirSync(join(state, 'ssh'), { recursive: true, mode: 0o700 })
    const stale = generateHostKeyPair('fleet-admin').publicKey
    writeFileSync(pub, stale)
    const l = await defaultAdminLogin({ state }, false, env)
    expect(l).toMatchObject({ source: 'fleet', file: pub, created: true })
    expect(l.key).not.toBe(stale.trim())
    expect(readFileSync(pub, 'utf8').trim()).toBe(l.key)
    expect(pairMatches(state)).toBe(true)
    expect(statSync(priv).mode & 0o777).toBe(0o600)
  })

  it('a write killed part way (a .pub and a half-written private key temp file) leaves no temp file after the next call', async () => {
    const state = freshState()
    const { priv, pub } = files(state)
    mkdirSync(join(state, 'ssh'), { recursive: true, mode: 0o700 })
    writeFileSync(pub, generateHostKeyPair('fleet-admin').publicKey)
    writeFileSync(`${priv}.tmp-424242`, '-----BEGIN OPENSSH PRIVATE KEY-----\nhalf', { mode: 0o600 })
    writeFileSync(`${pub}.tmp-434343`, 'ssh-ed25519 AAAA')
    const l = await defaultAdminLogin({ state }, false, env)
    expect(l).toMatchObject({ source: 'fleet', created: true })
    expect(pairMatches(state)).toBe(true)
    expect(readdirSync(join(state, 'ssh')).sort()).toEqual(['id_ed25519', 'id_ed25519.pub'])
  })

  it('a private key fleet cannot use: an error naming the file, nothing written', async () => {
    const state = freshState()
    const { priv, pub } = files(state)
    mkdirSync(join(state, 'ssh'), { recursive: true, mode: 0o700 })
    writeFileSync(priv, 'not a key\n', { mode: 0o600 })
    const e = await defaultAdminLogin({ state }, false, env).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(UserError)
    expect((e as Error).message).toContain(priv)
    expect(existsSync(pub)).toBe(false)
    expect(readFileSync(priv, 'utf8')).toBe('not a key\n')
  })

  it('a complete pair is used as it is', async () => {
    const state = freshState()
    const first = await defaultAdminLogin({ state }, false, env)
    expect(first.created).toBe(true)
    const { priv, pub } = files(state)
    const before = [readFileSync(priv, 'utf8'), readFileSync(pub, 'utf8'), statSync(priv).mtimeMs]
    expect(await defaultAdminLogin({ state }, false, env)).toEqual({ ...first, created: false })
    expect([readFileSync(priv, 'utf8'), readFileSync(pub, 'utf8'), statSync(priv).mtimeMs]).toEqual(before)
  })
})
