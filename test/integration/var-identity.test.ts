// The identity resync on /var disks: refuses disks in use (a real qemu holds the image), not
// ext4 labelled var, or not clean; converges from every state an interrupted resync can leave,
// simulated, from real SIGKILLs (of fleet, and of the appliance) and from SIGINT/SIGTERM (stop
// between commands, exit 130/143, staged files removed); keeps /home; leaves no staged key behind.
import { execa, type ResultPromise } from 'execa'
import { chmodSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { isLocked } from '../../src/adapters/qemu-img.js'
import { ToolError, UserError } from '../../src/errors.js'
import { resyncIdentity } from '../../src/services/var-disk.js'
import { ROOT, sandbox } from '../helpers/fleet.js'
import { readVarDisks } from '../helpers/var-disk.js'
import { filesContaining, folder, makeDisk, needsRecovery, readDisk, sha256, under, type Tree } from '../helpers/var-states.js'

process.env.LIBGUESTFS_BACKEND_SETTINGS ??= 'force_tcg'
const sb = sandbox()
afterAll(() => sb.cleanup())
const disksDir = join(sb.dir, 'disks')
const work = join(sb.dir, 'work') // holds only the 0700 tmpDirs handed to resyncIdentity
mkdirSync(disksDir)
mkdirSync(work, { mode: 0o700 })
let tmpCount = 0
function tmpDir(): string {
  const d = join(work, `tmp${tmpCount++}`)
  mkdirSync(d, { mode: 0o700 })
  return d
}
const disk = (name: string): string => join(disksDir, `${name}.qcow2`)

const id = (o: Record<string, string>): Map<string, Buffer> => new Map(Object.entries(o).map(([k, v]) => [k, Buffer.from(v)]))
const OLD_KEY = `-----BEGIN OPENSSH PRIVATE KEY-----\nOLD-${randomBytes(8).toString('hex')}\n-----END OPENSSH PRIVATE KEY-----\n`
const NEW_KEY = `-----BEGIN OPENSSH PRIVATE KEY-----\nNEW-${randomBytes(8).toString('hex')}\n-----END OPENSSH PRIVATE KEY-----\n`
const OLD = id({ 'machine-id': 'old0123456789abcdef0123456789ab\n', hostname: 'old\n', ssh_host_ed25519_key: OLD_KEY, 'ssh_host_ed25519_key.pub': 'ssh-ed25519 AAAAold\n', tcp_ports: '22\n', udp_ports: '' })
// Changed, added (hosts, admin_authorized_keys) and removed (tcp_ports) files; odd bytes kept.
const NEW = id({ 'machine-id': 'new0123456789abcdef0123456789ab\n', hostname: 'new "host" \\ x\n', ssh_host_ed25519_key: NEW_KEY, 'ssh_host_ed25519_key.pub': 'ssh-ed25519 AAAAnew\n', hosts: '10.0.0.5 db\n', udp_ports: '', admin_authorized_keys: 'ssh-ed25519 AAAAadmin admin\n' })
const HOME = randomBytes(96 * 1024)
const withHome = (t: Tree): Tree => ({ ...t, 'home/data': HOME })

/** The identity files of `set` must be exactly those of /identity: bytes, modes, owner 0:0. */
function expectIdentity(files: Record<string, { mode: number | string; uid: number; gid: number }>, read: (p: string) => Buffer, set: Map<string, Buffer>, what: string): void {
  const names = Object.keys(files).filter((p) => p.startsWith('/identity/')).map((p) => p.slice('/identity/'.length)).sort()
  expect(names, what).toEqual([...set.keys()].sort())
  for (const [n, data] of set) {
    const f = files[`/identity/${n}`]!
    expect(read(`/identity/${n}`).equals(data), `${what}: /identity/${n} bytes`).toBe(true)
    expect(Number.parseInt(String(typeof f.mode === 'number' ? f.mode.toString(8) : f.mode), 8), `${what}: ${n} mode`).toBe(n === 'ssh_host_ed25519_key' ? 0o600 : 0o644)
    expect([f.uid, f.gid], `${what}: ${n} owner`).toEqual([0, 0])
  }
}

/** Nothing staged is left beside the tmpDirs, and no file there holds a private key. */
function expectNoStagedKeys(): void {
  for (const d of readdirSync(work)) expect(readdirSync(join(work, d)), `${d} left behind`).toEqual([])
  expect(filesContaining(work, Buffer.from(NEW_KEY))).toEqual([])
  expect(filesContaining(work, Buffer.from(OLD_KEY))).toEqual([])
}

const snaps = async (f: string): Promise<string[]> => ((JSON.parse(String((await execa('qemu-img', ['info', '-U', '--output=json', f])).stdout)) as { snapshots?: { name: string }[] }).snapshots ?? []).map((x) => x.name)

/** A disk holding OLD whose sync to NEW dies with debugfs SIGKILLed at its 20th block write (as a host crash would): its rollback point stays. */
async function crashInDebugfs(f: string, tmp: string): Promise<void> {
  await makeDisk(f, withHome(under('identity', OLD)))
  process.env.DEBUGFS = 'strace -f -o /dev/null -e trace=pwrite64 -e inject=pwrite64:signal=KILL:when=20 debugfs'
  try {
    expect(await resyncIdentity([{ file: f, identity: NEW }], tmp).catch((e: unknown) => e)).toBeInstanceOf(ToolError)
  } finally {
    delete process.env.DEBUGFS
  }
  expect(await snaps(f)).toEqual(['fleet-identity-sync-m0'])
}

describe('/var identity resync', () => {
  it('isLocked sees a running qemu holding the disk; resync then refuses, naming the disk', async () => {
    const file = disk('locked')
    await makeDisk(file, withHome(under('identity', OLD)))
    expect(await isLocked(file)).toBe(false)
    const vm = execa('qemu-system-x86_64', ['-machine', 'pc', '-accel', 'tcg', '-display', 'none', '-nodefaults', '-drive', `file=${file},if=virtio,format=qcow2`], { reject: false })
    try {
      let locked = false
      for (let i = 0; i < 100 && !locked; i++) {
        locked = await isLocked(file)
        if (!locked) await new Promise((r) => setTimeout(r, 100))
      }
      expect(locked).toBe(true)
      const tmp = tmpDir()
      const t0 = performance.now()
      const err = await resyncIdentity([{ file, identity: NEW }], tmp).catch((e: unknown) => e)
      console.log(`resync refused a disk in use in ${Math.round(performance.now() - t0)} ms`)
      expect(err).toBeInstanceOf(UserError)
      expect((err as Error).message).toContain(file)
      expect((err as Error).message).toMatch(/in use/)
    } finally {
      vm.kill('SIGKILL')
      await vm
    }
    expect(await isLocked(file)).toBe(false)
    // A qemu that opened the disk read-only writes nothing: not "in use" for a writer's purposes.
    const reader = execa('qemu-system-x86_64', ['-machine', 'pc', '-accel', 'tcg', '-display', 'none', '-nodefaults', '-drive', `file=${file},if=virtio,format=qcow2,readonly=on`], { reject: false })
    try {
      await new Promise((r) => setTimeout(r, 1500))
      expect(reader.exitCode, 'the read-only qemu is running').toBeNull()
      expect(await isLocked(file)).toBe(false)
    } finally {
      reader.kill('SIGKILL')
      await reader
    }
    // A missing file is a tool error, never a silent "not locked".
    await expect(isLocked(join(disksDir, 'missing.qcow2'))).rejects.toBeInstanceOf(ToolError)
    const after = await readDisk(file)
    expectIdentity(after.files, (p) => after.files[p]!.data, OLD, 'untouched')
    expectNoStagedKeys()
  }, 60_000)

  it('refuses, before writing any disk, one that is not ext4 labelled var or that e2fsck -p cannot clean', async () => {
    const good = disk('good')
    const label = disk('label')
    const corrupt = disk('corrupt')
    await makeDisk(good, withHome(under('identity', OLD)))
    await makeDisk(label, withHome(under('identity', OLD)), { label: 'data' })
    await makeDisk(corrupt, withHome(under('identity', OLD)), { corrupt: true })
    let t0 = performance.now()
    const e1 = await resyncIdentity([{ file: good, identity: NEW }, { file: label, identity: NEW }], tmpDir()).catch((e: unknown) => e)
    console.log(`refused a disk labelled "data" in ${Math.round(performance.now() - t0)} ms`)
    expect(e1).toBeInstanceOf(UserError)
    expect((e1 as Error).message).toContain(label)
    expect((e1 as Error).message).toContain('labelled "data"')
    t0 = performance.now()
    const e2 = await resyncIdentity([{ file: good, identity: NEW }, { file: corrupt, identity: NEW }], tmpDir()).catch((e: unknown) => e)
    console.log(`refused a disk e2fsck -p cannot clean in ${Math.round(performance.now() - t0)} ms`)
    expect(e2).toBeInstanceOf(UserError)
    expect((e2 as Error).message).toContain(corrupt)
    expect((e2 as Error).message).toContain('e2fsck')
    expect((e2 as Error & { cause?: unknown }).cause).toBeInstanceOf(ToolError)
    const g = await readDisk(good)
    expectIdentity(g.files, (p) => g.files[p]!.data, OLD, 'good disk')
    expect(g.dirs).not.toContain('/identity.new')
    expectNoStagedKeys()
  }, 120_000)

  it('a sync killed inside debugfs (as a host crash would) leaves a rollback point; the next sync goes back to it only if the guest never mounted since', async () => {
    // Real: debugfs SIGKILLed at its 20th block write, in the middle of writing /identity.new.
    const crashed = disk('crashed')
    await crashInDebugfs(crashed, tmpDir())
    // Deterministic: disks whose current content e2fsck -p cannot repair, with a point from a
    // sync that did not finish, taken when the filesystem was last mounted at time 0 (never) or later.
    const never = disk('never-mounted')
    const since = disk('mounted-since')
    const broken = disk('broken-src')
    await makeDisk(broken, withHome(under('identity', OLD)), { corrupt: true })
    for (const [f, name] of [[never, 'fleet-identity-sync-m0'], [since, 'fleet-identity-sync-m1700000000']] as const) {
      await makeDisk(f, withHome(under('identity', OLD)))
      await execa('qemu-img', ['snapshot', '-c', name, f])
      await execa('qemu-img', ['convert', '-n', '-f', 'qcow2', '-O', 'qcow2', broken, f])
    }
    const said: string[] = []
    const t0 = performance.now()
    await resyncIdentity([{ file: crashed, identity: NEW }, { file: never, identity: NEW }], tmpDir(), (l) => said.push(l))
    console.log(`two disks recovered (${said.filter((l) => /going back/.test(l)).length} went back to their point) in ${Math.round(performance.now() - t0)} ms`)
    expect(said.join('\n')).toContain(`${never}: an earlier identity sync did not finish`)
    for (const f of [crashed, never]) {
      const { files, dirs } = await readDisk(f)
      expectIdentity(files, (p) => files[p]!.data, NEW, f)
      expect(dirs.filter((d) => d.startsWith('/identity')), f).toEqual(['/identity'])
      expect(sha256(files['/home/data']!.data), `${f}: /home`).toBe(sha256(HOME))
      expect(await snaps(f), f).toEqual([])
    }
    // Mounted since the point was taken: going back could lose what the guest wrote, so refuse.
    const err = await resyncIdentity([{ file: since, identity: NEW }], tmpDir()).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UserError)
    expect((err as Error).message).toContain('e2fsck')
    expect(await snaps(since)).toEqual(['fleet-identity-sync-m1700000000'])
    expectNoStagedKeys()
  }, 120_000)

  it('where the daemon\'s monitor socket path would not fit, the rollback points are taken and dropped with qemu-img: same crash and recovery', async () => {
    const deep = (): string => {
      const d = join(tmpDir(), 'a-folder-name-long-enough-that-a-unix-socket-path-below-it-does-not-fit-in-sun-path')
      mkdirSync(d, { mode: 0o700 })
      return d
    }
    const f = disk('deep-crashed')
    await crashInDebugfs(f, deep())
    expect(await resyncIdentity([{ file: f, identity: NEW }], deep())).toBe('e2fs')
    const { files, dirs } = await readDisk(f)
    expectIdentity(files, (p) => files[p]!.data, NEW, f)
    expect(dirs.filter((d) => d.startsWith('/identity')), f).toEqual(['/identity'])
    expect(sha256(files['/home/data']!.data), `${f}: /home`).toBe(sha256(HOME))
    expect(await snaps(f)).toEqual([])
    for (const d of readdirSync(work)) rmSync(join(work, d, 'a-folder-name-long-enough-that-a-unix-socket-path-below-it-does-not-fit-in-sun-path'), { recursive: true, force: true })
    expectNoStagedKeys()
  }, 120_000)

  // States an interrupted resync (or the old delete-then-upload resync) can leave.
  const STATES: Record<string, Tree> = {
    'clean-old': under('identity', OLD),
    'new-partial': { ...under('identity', OLD), ...under('identity.new', NEW, 2) },
    'between-renames': { ...under('identity.old', OLD), ...under('identity.new', NEW) },
    'old-left': { ...under('identity', NEW), ...under('identity.old', OLD) },
    'old-left-partial-new': { ...under('identity', OLD), ...under('identity.old', OLD, 3), ...under('identity.new', NEW, 1) },
    'legacy-partial': under('identity', OLD, 2),
    'legacy-missing': {},
    'already-new': under('identity', NEW),
  }
  // Real runs of the appliance path SIGKILLed right after sending the N-th guestfish command
  // starting with the pattern (the last also kills the appliance).
  const KILLS: [string, string, number, boolean?][] = [
    ['kill-e2fsck', 'e2fsck', 1],
    ['kill-tar-in', 'tar-in', 1],
    ['kill-sync', 'sync', 1],
    ['kill-rename-away', 'rename "/identity" ', 1],
    ['kill-rename-in', 'rename "/identity.new"', 1],
    ['kill-cleanup', 'rm-rf "/identity.old"', 2],
    ['kill-appliance-after-sync', 'sync', 1, true],
  ]
  // The same for the default, appliance-free path (debugfs commands through the FUSE export); the
  // last kills qemu-storage-daemon too, after /identity.new was flushed.
  const E2_KILLS: [string, string, number, boolean?][] = [
    ['e2-kill-mkdir', 'mkdir "/identity.new"', 1],
    ['e2-kill-write', 'write ', 2],
    ['e2-kill-flush', 'close', 1],
    ['e2-kill-swap', 'ln "/identity" ', 1],
    ['e2-kill-cleanup', 'rm "/identity.old/', 2],
    ['e2-kill-daemon-after-flush', 'close', 1, true],
  ]
  // Runs sent SIGINT / SIGTERM at a point: they stop between commands (not between the two
  // renames), end guestfish cleanly, remove their staged files and exit 130 / 143.
  const SIGNALS: [string, string, number, 'INT' | 'TERM', 'old' | 'new'][] = [
    ['int-tar-in', 'tar-in', 1, 'INT', 'old'],
    ['term-rename-away', 'rename "/identity" ', 1, 'TERM', 'new'],
  ]
  const E2_SIGNALS: [string, string, number, 'INT' | 'TERM', 'old' | 'new'][] = [
    ['e2-int-write', 'write ', 1, 'INT', 'old'],
    ['e2-term-swap', 'ln "/identity" ', 1, 'TERM', 'new'],
  ]

  it('converges to the desired identity from every interrupted state and after SIGKILLs, keeping /home', async () => {
    for (const [name, tree] of Object.entries(STATES)) await makeDisk(disk(name), withHome(tree))
    for (const [name] of [...KILLS, ...SIGNALS, ...E2_KILLS, ...E2_SIGNALS]) await makeDisk(disk(name), withHome(under('identity', OLD)))

    // GUESTFISH override: forwards fleet's commands and SIGKILLs fleet after the chosen one.
    const killer = join(sb.dir, 'killer.sh')
    // With KILL_APPLIANCE the appliance's qemu is SIGKILLed too (a host crash, for the disk):
    // the mounted ext4 keeps a journal to replay.
    writeFileSync(killer, `#!/bin/bash
parent=$PPID; c=0
exec 3> >(exec guestfish "$@")
gf=$!
while IFS= read -r line; do
  hit=; case $line in "$KILL_AT"*) c=$((c+1)); [ "$c" -eq "$KILL_N" ] && hit=1 ;; esac
  # A signal (Ctrl-C / SIGTERM) is sent before the command goes on, so it lands while the command
  # runs; sent after, a busy host could let fleet see the reply first and go on to the next one.
  if [ -n "$hit" ] && [ -n "$KILL_SIG" ]; then kill -"$KILL_SIG" "$parent"; fi
  printf '%s\\n' "$line" >&3
  if [ -n "$hit" ] && [ -z "$KILL_SIG" ]; then
    if [ -n "$KILL_APPLIANCE" ]; then sleep 2; pkill -9 -P "$gf"; fi
    kill -KILL "$parent"
  fi
done
exec 3>&-
wait "$gf"
`)
    chmodSync(killer, 0o755)
    // DEBUGFS override: debugfs runs under fleet's supervisor shell, so fleet is the grandparent.
    // With KILL_APPLIANCE qemu-storage-daemon (the supervisor's other child) is SIGKILLed too.
    const e2killer = join(sb.dir, 'e2killer.sh')
    writeFileSync(e2killer, `#!/bin/bash
sup=$PPID; parent=$(ps -o ppid= -p "$sup" | tr -d ' '); c=0
exec 3> >(exec debugfs "$@")
dbg=$!
while IFS= read -r line; do
  hit=; case $line in "$KILL_AT"*) c=$((c+1)); [ "$c" -eq "$KILL_N" ] && hit=1 ;; esac
  if [ -n "$hit" ] && [ -n "$KILL_SIG" ]; then kill -"$KILL_SIG" "$parent"; fi # as above
  printf '%s\\n' "$line" >&3
  if [ -n "$hit" ] && [ -z "$KILL_SIG" ]; then
    if [ -n "$KILL_APPLIANCE" ]; then sleep 1; pkill -9 -P "$sup" -f qemu-storage-daemon; fi
    kill -KILL "$parent"
  fi
done
exec 3>&-
wait "$dbg"
`)
    chmodSync(e2killer, 0o755)
    const script = join(sb.dir, 'resync.mjs')
    writeFileSync(script, `import { resyncIdentity } from ${JSON.stringify(join(ROOT, 'dist/services/var-disk.js'))}
import { guardSignals } from ${JSON.stringify(join(ROOT, 'dist/util/interrupt.js'))}
guardSignals() // as every mutating command does: Ctrl-C / SIGTERM stop between steps
const [file, tmp, set] = process.argv.slice(2)
try {
  await resyncIdentity([{ file, identity: new Map(Object.entries(JSON.parse(set)).map(([k, v]) => [k, Buffer.from(v, 'base64')])) }], tmp)
} catch (e) {
  console.error(String(e))
  process.exit(e.exitCode ?? 1)
}
`)
    const setArg = JSON.stringify(Object.fromEntries([...NEW].map(([k, v]) => [k, v.toString('base64')])))
    let t0 = performance.now()
    const killedTmp = KILLS.map(() => tmpDir())
    const start = (name: string, tmp: string, env: Record<string, string>): ResultPromise =>
      execa('node', [script, disk(name), tmp, setArg], { env: { GUESTFISH: killer, DEBUGFS: e2killer, LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg', ...env }, reject: false, timeout: 240_000 })
    const gf = { FLEET_VAR_METHOD: 'guestfish' }
    // The appliance-free runs first, one at a time (they take well under a second each).
    const e2Tmp = E2_KILLS.map(() => tmpDir())
    const e2Results = []
    for (const [i, [name, pat, n, daemon]] of E2_KILLS.entries()) e2Results.push(await start(name, e2Tmp[i]!, { KILL_AT: pat, KILL_N: String(n), KILL_APPLIANCE: daemon ? '1' : '' }))
    const e2Sig = []
    for (const [name, pat, n, sig] of E2_SIGNALS) e2Sig.push(await start(name, tmpDir(), { KILL_AT: pat, KILL_N: String(n), KILL_SIG: sig }))
    console.log(`${E2_KILLS.length + E2_SIGNALS.length} appliance-free resyncs killed or signalled in ${Math.round(performance.now() - t0)} ms`)
    t0 = performance.now()
    const runs = KILLS.map(([name, pat, n, appliance], i) => start(name, killedTmp[i]!, { ...gf, KILL_AT: pat, KILL_N: String(n), KILL_APPLIANCE: appliance ? '1' : '' }))
    const signalled = SIGNALS.map(([name, pat, n, sig]) => start(name, tmpDir(), { ...gf, KILL_AT: pat, KILL_N: String(n), KILL_SIG: sig }))
    const results = await Promise.all(runs)
    const sigResults = await Promise.all(signalled)
    console.log(`${KILLS.length + SIGNALS.length} resyncs killed or signalled in parallel in ${Math.round(performance.now() - t0)} ms`)
    for (const [i, r] of results.entries()) expect(r.signal, `${KILLS[i]![0]}: ${r.stderr}`).toBe('SIGKILL')
    for (const [i, r] of e2Results.entries()) expect(r.signal, `${E2_KILLS[i]![0]}: ${r.stderr}`).toBe('SIGKILL')
    for (const [i, r] of [...sigResults, ...e2Sig].entries()) {
      const [name, , , sig, expected] = [...SIGNALS, ...E2_SIGNALS][i]!
      expect(r.exitCode, `${name}: ${r.stderr}`).toBe(sig === 'INT' ? 130 : 143)
      expect(await needsRecovery(disk(name)), `${name}: guestfish ended cleanly`).toBe(false)
      const { files } = await readDisk(disk(name))
      expectIdentity(files, (p) => files[p]!.data, expected === 'new' ? NEW : OLD, name)
      expect(sha256(files['/home/data']!.data), `${name}: /home`).toBe(sha256(HOME))
    }
    const allKilledTmp = [...killedTmp, ...e2Tmp]
    expect(readdirSync(work).filter((d) => !allKilledTmp.includes(join(work, d))).flatMap((d) => readdirSync(join(work, d))), 'staged files left by signalled runs').toEqual([])
    // guestfish (or debugfs) ends after the command in flight and the appliance (or the export) stops; wait for the lock.
    for (const [name] of [...KILLS, ...E2_KILLS]) {
      for (let i = 0; i < 300 && (await isLocked(disk(name))); i++) await new Promise((r) => setTimeout(r, 100))
    }

    // Every kill left a complete identity: /identity old or new, or (between the renames) the
    // complete old one in /identity.old next to the complete new one.
    const dirty: string[] = []
    for (const [name] of [...KILLS, ...E2_KILLS]) {
      if (await needsRecovery(disk(name))) dirty.push(name)
      const { files, dirs } = await readDisk(disk(name))
      const cur = folder(files, 'identity')
      const same = (a: Map<string, Buffer> | undefined, b: Map<string, Buffer>): boolean => !!a && a.size === b.size && [...b].every(([k, v]) => a.get(k)?.equals(v))
      const complete = dirs.includes('/identity') ? same(cur, OLD) || same(cur, NEW) : same(folder(files, 'identity.old'), OLD) && same(folder(files, 'identity.new'), NEW)
      console.log(`${name}: ${dirs.filter((d) => d.startsWith('/identity')).join(' ')}; /identity is ${same(cur, NEW) ? 'new' : same(cur, OLD) ? 'old' : 'absent'}`)
      expect(complete, `${name}: a complete identity after the kill`).toBe(true)
      expect(sha256(files['/home/data']!.data), `${name}: /home`).toBe(sha256(HOME))
    }
    console.log(`journal left to replay after the kill: ${dirty.join(', ') || 'none'}`)
    expect(dirty).toContain('kill-appliance-after-sync')

    const all = [...Object.keys(STATES), ...[...KILLS, ...SIGNALS, ...E2_KILLS, ...E2_SIGNALS].map(([n]) => n)]
    t0 = performance.now()
    const said: string[] = []
    expect(await resyncIdentity(all.map((n) => ({ file: disk(n), identity: NEW })), tmpDir(), (l) => said.push(l))).toBe('e2fs')
    console.log(`resync of ${all.length} disks without an appliance: ${Math.round(performance.now() - t0)} ms`)
    expect(said.join('\n')).toMatch(/e2fs/)
    // The killed runs could not clean up: their staged copies stay inside their own 0700 tmpDir,
    // as 0600 files, for the caller's crash recovery to remove. Every other tmpDir is empty.
    for (const d of allKilledTmp) {
      expect(statSync(d).mode & 0o777).toBe(0o700)
      for (const h of filesContaining(d, Buffer.from(NEW_KEY))) expect(statSync(h).mode & 0o777, h).toBe(0o600)
      rmSync(d, { recursive: true })
    }
    expectNoStagedKeys()

    // Read back through the kernel's ext4 (a guestfish appliance), independent of the writer.
    const read = await readVarDisks(all.map(disk))
    for (const [i, name] of all.entries()) {
      const c = read[i]!
      expect(c.label).toBe('var')
      expectIdentity(c.files, (p) => Buffer.from(c.files[p]!.content), NEW, name)
      expect(c.dirs.filter((d) => d.startsWith('/identity')), name).toEqual(['/identity'])
      expect(sha256((await readDisk(disk(name))).files['/home/data']!.data), `${name}: /home`).toBe(sha256(HOME))
    }
  }, 720_000)
})

