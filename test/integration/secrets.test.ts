// Host keys that travel with the repository, encrypted with age to .fleet/recipients:
// admin A creates a VM and commits; a fresh clone with only admin B's key upgrades it to a new
// image (and rewrites /var/identity) with the host key unchanged; admin C, not on the list, is
// refused with exit 2 naming the file and its recipients, and nothing changes. No private key
// is ever in git or left in a temp file, also after a Ctrl-C.
import { execa } from 'execa'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blankImage, fleet, FLEET, fleetJson, sandbox, virsh } from '../helpers/fleet.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { treeSum } from '../helpers/tree-sum.js'

const sb = sandbox()
const vm = sb.name('sec')
const HW = ['--memory', '256M', '--vcpus', '1', '--var-size', '64M', '--network', 'none', '--yes']
const homes = { a: join(sb.dir, 'home-a'), b: join(sb.dir, 'home-b'), c: join(sb.dir, 'home-c') }
const key = (who: keyof typeof homes) => join(homes[who], '.ssh', 'id_ed25519')
const repoA = join(sb.dir, 'repo-a')
const cloneB = join(sb.dir, 'clone-b')
const cloneC = join(sb.dir, 'clone-c')
// Every admin has their own HOME: nothing is found by accident in the test runner's.
const as = (who: keyof typeof homes, repo: string, extra: Record<string, string> = {}) => ({ env: { ...sb.env, HOME: homes[who], FLEET_REPO: repo, ...extra } })
const git = (cwd: string, args: string[]) => execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { cwd })

/** Files under `roots` whose bytes hold `needle` (the private key's base64 body). */
function filesHolding(needle: string, ...roots: string[]): string[] {
  const out: string[] = []
  const walk = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false })
    if (!st) return
    if (st.isDirectory()) {
      if (p.endsWith('/.git')) return // searched with git below
      for (const e of readdirSync(p)) walk(join(p, e))
    } else if (st.isFile() && st.size < 1 << 20 && readFileSync(p).includes(needle)) out.push(p)
  }
  for (const r of roots) walk(r)
  return out
}

/**
 * Files of /identity on a /var disk, read without fleet and without an appliance: the qcow2 as
 * raw (qemu-img convert), then debugfs reads the ext4 directly. The raw copy is removed at once.
 */
async function readVarFiles(disk: string, names: string[]): Promise<Record<string, { mode: number; content: string }>> {
  const raw = join(sb.dir, 'var-read.raw')
  await execa('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'raw', disk, raw])
  try {
    const out: Record<string, { mode: number; content: string }> = {}
    for (const n of names) {
      const content = String((await execa('debugfs', ['-R', `cat /identity/${n}`, raw], { stripFinalNewline: false })).stdout)
      const stat = String((await execa('debugfs', ['-R', `stat /identity/${n}`, raw])).stdout)
      out[n] = { mode: Number.parseInt(/Mode:\s+0?([0-7]+)/.exec(stat)![1]!, 8) & 0o777, content }
    }
    return out
  } finally {
    rmSync(raw, { force: true })
  }
}

/** The middle line of an OpenSSH private key: unique to that key, found in any copy of it. */
const keyBody = (pem: string) => pem.split('\n')[2]!

describe.skipIf(libvirtMissing)('host keys encrypted in git (age)', { timeout: 300_000 }, () => {
  let hostKey = ''
  let hostPub = ''

  beforeAll(async () => {
    for (const [who, h] of Object.entries(homes)) {
      mkdirSync(join(h, '.ssh'), { recursive: true })
      await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `admin-${who}`, '-f', join(h, '.ssh', 'id_ed25519')])
    }
    await blankImage(join(sb.dir, 'one.qcow2'), '64M')
    await blankImage(join(sb.dir, 'two.qcow2'), '65M')
  })
  afterAll(async () => {
    await virsh(['undefine', '--nvram', vm])
    sb.cleanup()
  })

  it('admin A: init, add admin B, create a VM, commit; no private key in git', async () => {
    const init = await fleet(as('a', repoA), ['init', repoA, '--identity', key('a')])
    expect(init.code, init.stderr).toBe(0)
    expect(readFileSync(join(repoA, '.fleet', 'recipients'), 'utf8')).toContain(readFileSync(`${key('a')}.pub`, 'utf8').trim())
    expect(readFileSync(join(repoA, '.gitignore'), 'utf8')).toMatch(/committed encrypted/)
    const add = await fleet(as('a', repoA, { FLEET_AGE_IDENTITY: key('a') }), ['secrets', 'add-admin', `${key('b')}.pub`])
    expect(add.code, add.stderr).toBe(0)
    await fleetJson(as('a', repoA), ['image', 'import', join(sb.dir, 'one.qcow2'), '--name', 'base'])
    const c = await fleet(as('a', repoA, { FLEET_AGE_IDENTITY: key('a') }), ['create-vm', vm, ...HW])
    expect(c.code, c.stderr).toBe(0)
    const mdir = join(repoA, 'machines', vm)
    expect(existsSync(join(mdir, 'ssh_host_ed25519_key'))).toBe(false)
    expect(readFileSync(join(mdir, 'ssh_host_ed25519_key.age'), 'utf8')).toMatch(/^-----BEGIN AGE ENCRYPTED FILE-----/)
    hostPub = readFileSync(join(mdir, 'ssh_host_ed25519_key.pub'), 'utf8')
    // What A's create-vm encrypted (the /var disk is read back after B's upgrade below).
    hostKey = String((await execa('age', ['-d', '-i', key('a'), join(mdir, 'ssh_host_ed25519_key.age')], { stripFinalNewline: false })).stdout)
    // The pair of the committed .pub: ssh-keygen derives the same public key from it.
    const derived = await execa('ssh-keygen', ['-y', '-f', '/dev/stdin'], { input: hostKey, reject: false })
    if (derived.exitCode === 0) expect(hostPub).toContain(String(derived.stdout).trim().split(' ')[1])
    await git(repoA, ['init', '-q'])
    await git(repoA, ['add', '-A'])
    await git(repoA, ['commit', '-qm', 'fleet with one VM'])
    expect((await git(repoA, ['ls-files'])).stdout).toContain(`machines/${vm}/ssh_host_ed25519_key.age`)
    expect(filesHolding(keyBody(hostKey), repoA, sb.state)).toEqual([])
  })

  it('admin B, from a fresh clone, upgrades the VM to a new image: host key on /var unchanged', async () => {
    await git(sb.dir, ['clone', '-q', repoA, cloneB])
    const b = as('b', cloneB, { FLEET_AGE_IDENTITY: key('b') })
    const two = await fleetJson<{ digest: string }>(b, ['image', 'import', join(sb.dir, 'two.qcow2'), '--name', 'base'])
    // An identity change too, so /var/identity is rewritten from the decrypted key.
    writeFileSync(join(cloneB, 'machines', vm, 'hosts'), `127.0.1.1 ${vm}\n10.0.0.9 db\n`)
    const dry = await fleetJson<{ vms: { outcome: string; identity: { changed: string[] } }[] }>(b, ['upgrade', vm, '--dry-run'])
    expect(dry.vms[0]).toMatchObject({ outcome: 'would upgrade', identity: { changed: ['hosts'] } })

    // Ctrl-C while the decrypted identity is staged in the scratch folder: nothing with the key survives.
    // The appliance method keeps the staged copy for seconds, so the signal lands while it is there.
    const p = execa(FLEET, ['upgrade', vm], { env: { ...b.env, FLEET_VAR_METHOD: 'guestfish' }, reject: false, stdin: 'ignore', timeout: 300_000 })
    const tmp = join(sb.state, 'tmp')
    let staged = false
    const poll = setInterval(() => {
      if (staged || !existsSync(tmp)) return
      const found = filesHolding(keyBody(hostKey), tmp)
      if (found.length) {
        staged = true
        p.kill('SIGINT')
      }
    }, 20)
    const stopped = await p
    clearInterval(poll)
    expect(staged, `the key was never staged in ${tmp}\n${stopped.stderr}`).toBe(true)
    // The VM whose resync was cut short is reported (rolled back); the status is the signal's.
    expect(stopped.exitCode, stopped.stderr).toBe(130)
    expect(filesHolding(keyBody(hostKey), sb.dir)).toEqual([])

    // The next run resolves the interrupted upgrade and ends on the new image.
    const r = await fleet(b, ['upgrade', vm, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const info = await execa('qemu-img', ['info', '-U', '--output=json', join(sb.state, 'vms', vm, 'boot.qcow2')])
    expect(String(info.stdout)).toContain(two.digest)
    const t0 = Date.now()
    const onVar = await readVarFiles(join(sb.state, 'vms', vm, 'var.qcow2'), ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'hosts'])
    console.log(`read /var back in ${Date.now() - t0} ms`)
    expect(onVar.ssh_host_ed25519_key).toEqual({ mode: 0o600, content: hostKey })
    expect(onVar['ssh_host_ed25519_key.pub']!.content).toBe(hostPub)
    expect(onVar.hosts!.content).toContain('10.0.0.9 db')
    expect(filesHolding(keyBody(hostKey), cloneB, sb.state)).toEqual([])
  })

  it('admin C, not on the list, gets exit 2 naming the file and its recipients; nothing changes', async () => {
    await git(sb.dir, ['clone', '-q', repoA, cloneC])
    writeFileSync(join(cloneC, 'machines', vm, 'hosts'), `127.0.1.1 ${vm}\n10.0.0.7 other\n`)
    // C's key is found in C's ~/.ssh (no FLEET_AGE_IDENTITY).
    const c = as('c', cloneC)
    const before = treeSum(sb.state, cloneC)
    const xmlBefore = (await virsh(['dumpxml', vm])).stdout
    for (const args of [['upgrade', vm], ['upgrade', vm, '--dry-run']]) {
      const r = await fleet(c, args)
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toContain(`machine ${vm}`)
      expect(r.stderr).toContain(join(cloneC, 'machines', vm, 'ssh_host_ed25519_key.age'))
      expect(r.stderr).toMatch(/admin-a .*admin-b|admin-b .*admin-a/s)
      expect(r.stderr).toContain(key('c'))
    }
    expect(treeSum(sb.state, cloneC).sum).toBe(before.sum)
    expect((await virsh(['dumpxml', vm])).stdout).toBe(xmlBefore)
  })

  it('git never holds private key material, in any clone or commit', async () => {
    for (const repo of [repoA, cloneB, cloneC]) {
      await git(repo, ['add', '-A'])
      const grep = await git(repo, ['grep', '-I', '-l', '-e', 'PRIVATE KEY', '-e', 'AGE-SECRET-KEY', '-e', keyBody(hostKey)])
        .catch((e: { exitCode: number; stdout: string }) => e)
      expect(grep.exitCode, String(grep.stdout)).toBe(1) // git grep: 1 = no match
      const history = await git(repo, ['log', '--all', '-p'])
      expect(String(history.stdout)).not.toContain('PRIVATE KEY')
      expect(String(history.stdout)).not.toContain(keyBody(hostKey))
    }
  })

  it('secrets remove-admin / rekey: a kill between the list and the files is finished by rekey; B then loses access', async () => {
    const a = as('a', repoA, { FLEET_AGE_IDENTITY: key('a') })
    const age = join(repoA, 'machines', vm, 'ssh_host_ed25519_key.age')
    const old = readFileSync(age, 'utf8')
    const killed = await execa(FLEET, ['secrets', 'remove-admin', 'admin-b'], { env: { ...a.env, FLEET_TEST_KILL_AT: 'secrets:encrypt' }, reject: false })
    expect(killed.signal, `${killed.exitCode} ${String(killed.stderr)}`).toBe('SIGKILL')
    expect(readFileSync(join(repoA, '.fleet', 'recipients'), 'utf8')).not.toContain('admin-b')
    expect(readFileSync(age, 'utf8')).toBe(old) // the machine still has its (old) .age
    expect(readdirSync(join(repoA, 'machines', vm)).filter((f) => f.includes('.tmp-'))).toEqual([])
    // What a rekey killed inside its atomic write would leave (ciphertext): removed under the lock.
    writeFileSync(`${age}.tmp-99999`, old)
    const rk = await fleet(a, ['secrets', 'rekey'])
    expect(existsSync(`${age}.tmp-99999`)).toBe(false)
    expect(rk.code, rk.stderr).toBe(0)
    expect(readFileSync(age, 'utf8')).not.toBe(old)
    const b = await fleet(as('b', repoA, { FLEET_AGE_IDENTITY: key('b') }), ['upgrade', vm, '--dry-run'])
    expect(b.code, b.stderr).toBe(2)
    expect(b.stderr).toContain('admin-a')
    expect(b.stderr).not.toContain('admin-b (')
    const removeLast = await fleet(a, ['secrets', 'remove-admin', `${key('a')}.pub`])
    expect(removeLast.code).toBe(2)
    expect(removeLast.stderr).toMatch(/nobody able to decrypt/)
  })

  it('secrets migrate: a repository with plaintext host keys is encrypted by one command, .gitignore replaced', async () => {
    const legacy = join(sb.dir, 'legacy')
    mkdirSync(join(legacy, 'machines'), { recursive: true })
    await execa('cp', ['-r', join(repoA, 'machines', vm), join(legacy, 'machines', vm)])
    rmSync(join(legacy, 'machines', vm, 'ssh_host_ed25519_key.age'))
    writeFileSync(join(legacy, 'machines', vm, 'ssh_host_ed25519_key'), hostKey, { mode: 0o600 })
    writeFileSync(join(legacy, '.gitignore'), '# Private SSH host keys never go into git; back them up elsewhere.\nmachines/*/ssh_host_*_key\n*.qcow2\n')
    const b = as('b', legacy, { FLEET_AGE_IDENTITY: key('b') })
    const dry = await fleet(b, ['secrets', 'migrate', '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(existsSync(join(legacy, 'machines', vm, 'ssh_host_ed25519_key'))).toBe(true)
    const m = await fleet(b, ['secrets', 'migrate'])
    expect(m.code, m.stderr).toBe(0)
    expect(existsSync(join(legacy, 'machines', vm, 'ssh_host_ed25519_key'))).toBe(false)
    expect(readFileSync(join(legacy, '.fleet', 'recipients'), 'utf8')).toContain('admin-b')
    const ignore = readFileSync(join(legacy, '.gitignore'), 'utf8')
    expect(ignore).not.toContain('never go into git')
    expect(ignore).toContain('committed encrypted')
    expect(ignore).toContain('*.qcow2')
    expect(filesHolding(keyBody(hostKey), legacy)).toEqual([])
    // B decrypts it back to the very same key.
    const dec = await execa('age', ['-d', '-i', key('b'), join(legacy, 'machines', vm, 'ssh_host_ed25519_key.age')])
    expect(String(dec.stdout) + '\n').toBe(hostKey)
    // A .pub that is not the pair of the decrypted key: exit 2, and the hint never says to write a plaintext key.
    writeFileSync(join(legacy, 'machines', vm, 'ssh_host_ed25519_key.pub'), readFileSync(`${key('c')}.pub`))
    const bad = await fleet(b, ['upgrade', vm, '--dry-run'])
    expect(bad.code, bad.stderr).toBe(2)
    expect(bad.stderr).toContain('does not match the private key')
    expect(bad.stderr).toMatch(/Restore ssh_host_ed25519_key\.age and ssh_host_ed25519_key\.pub from git/)
  })
})
