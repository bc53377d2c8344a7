// The identity resync a remote host runs (remote-var.ts), run here against a real raw ext4 with the
// real e2fsprogs: debugfs SIGKILLed in the middle of a batch (strace injects the kill at a chosen
// block write, as a crash would stop it) leaves undo files on the "host"; the next run puts the
// blocks back with e2undo and then syncs: /identity exactly the new set, every other byte of the
// guest's data intact, e2fsck clean, no undo file left. If the guest mounted the filesystem in
// between, the undo files are stale: removed, never replayed, the guest's new data kept.
import { execa } from 'execa'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resyncJob } from '../../src/services/remote-var.js'

const dir = mkdtempSync(join(tmpdir(), 'fleet-remote-var-'))
const home = join(dir, 'home')
const wrap = join(dir, 'wrap')
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const set = (tag: string) => new Map<string, Buffer>([
  ['machine-id', Buffer.from(`${tag.repeat(32).slice(0, 32)}\n`)],
  ['hostname', Buffer.from(`host-${tag}\n`)],
  ['ssh_host_ed25519_key', Buffer.from(`-----BEGIN OPENSSH PRIVATE KEY-----\n${tag.repeat(300)}\n-----END OPENSSH PRIVATE KEY-----\n`)],
  ['ssh_host_ed25519_key.pub', Buffer.from(`ssh-ed25519 AAAA${tag} root@x\n`)],
  ['hosts', Buffer.from(`10.0.0.1 ${tag}\n`.repeat(200))],
])
const OLD = set('a')
const NEW = set('b')
const data = Buffer.alloc(3 << 20, 7).map((_, i) => (i * 2654435761) >>> 24)

async function debugfsPath(): Promise<string> {
  return String((await execa('sh', ['-c', 'PATH=$PATH:/usr/sbin:/sbin command -v debugfs'])).stdout).trim()
}

/** A raw ext4 labelled var holding OLD in /identity and 3 MiB of the guest's data in /home. */
async function makeVar(file: string): Promise<void> {
  const root = join(dir, `root-${Date.now()}`)
  mkdirSync(join(root, 'identity'), { recursive: true })
  mkdirSync(join(root, 'home'))
  for (const [n, b] of OLD) writeFileSync(join(root, 'identity', n), b)
  writeFileSync(join(root, 'home', 'data'), data)
  await execa('mkfs.ext4', ['-q', '-F', '-L', 'var', '-E', 'root_owner=0:0', '-d', root, file, '64M'], { env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } })
  rmSync(root, { recursive: true })
}

/**
 * Runs the resync job as the host would; `kill` SIGKILLs the n-th writing debugfs at its w-th block
 * write, and with `crash` the whole job with it (as a host crash or a killed ssh session would:
 * nothing of the script runs after), else the script lives on.
 */
async function resync(file: string, kill?: { batch: number; write: number; crash?: boolean }) {
  const job = resyncJob(file, NEW)
  const env: Record<string, string> = { HOME: home, TMPDIR: dir, PATH: `${kill ? `${wrap}:` : ''}${process.env.PATH}`, W: wrap }
  if (kill) Object.assign(env, { KILL_BATCH: String(kill.batch), KILL_WRITE: String(kill.write), KILL_ALL: kill.crash === false ? '' : '1' })
  rmSync(join(wrap, 'count'), { force: true })
  const r = await execa(job.argv[0]!, job.argv.slice(1), { input: job.input, env, extendEnv: false, reject: false })
  return { code: r.exitCode ?? -1, stderr: String(r.stderr) }
}

const cat = async (file: string, p: string) => Buffer.from((await execa(await debugfsPath(), ['-R', `cat ${p}`, file], { encoding: 'buffer', stripFinalNewline: false })).stdout as Uint8Array)
/** The undo files a run left for `file` on the "host" (its folder is named for the volume path). */
const undoFiles = (file: string) => {
  const d = join(home, '.local/state/fleet/undo', sha(Buffer.from(file)).slice(0, 32))
  return existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.e2undo')) : []
}
const fsck = async (file: string) => (await execa('e2fsck', ['-f', '-n', file], { reject: false, env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } })).exitCode

async function expectSynced(file: string): Promise<void> {
  for (const [n, b] of NEW) expect(sha(await cat(file, `/identity/${n}`)), n).toBe(sha(b))
  expect(sha(await cat(file, '/home/data')), 'the guest data').toBe(sha(data))
  expect(await fsck(file)).toBe(0)
  expect(undoFiles(file), 'no undo file left').toEqual([])
}

describe('remote /var identity resync: undo files for a kill inside a debugfs batch', () => {
  beforeAll(async () => {
    mkdirSync(wrap, { recursive: true })
    writeFileSync(join(wrap, 'debugfs'), `#!/bin/sh
# Test wrapper: the KILL_BATCH-th writing debugfs gets SIGKILL at its KILL_WRITE-th pwrite.
real=${await debugfsPath()}
case " $* " in *" -w "*) ;; *) exec "$real" "$@" ;; esac
n=$(( $(cat "$W/count" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$W/count"
[ "$n" = "$KILL_BATCH" ] || exec "$real" "$@"
strace -f -o /dev/null -e trace=pwrite64 -e inject=pwrite64:signal=KILL:when="$KILL_WRITE" "$real" "$@"
rc=$?
# KILL_ALL: the batch's subshell and the script die too, before either runs another line.
[ -n "$KILL_ALL" ] && kill -KILL "$PPID" "$(cut -d' ' -f4 /proc/$PPID/stat)"
exit $rc
`)
    chmodSync(join(wrap, 'debugfs'), 0o755)
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('a debugfs killed mid-batch is undone by the next run, which then syncs: identity new, data intact, fsck clean', async () => {
    const file = join(dir, 'var.raw')
    await makeVar(file)
    const orig = readFileSync(file)
    const killed = await resync(file, { batch: 1, write: 30 })
    expect(killed.code, killed.stderr).not.toBe(0)
    expect(undoFiles(file).length).toBeGreaterThan(0)
    const broken = await fsck(file)
    // The next run stopped right after its undo (and e2fsck): the killed run's writes are gone,
    // every block is as before the sync began but the superblock (e2fsck's check time).
    const stopped = await resync(file, { batch: 1, write: 1 })
    expect(stopped.code).not.toBe(0)
    expect(stopped.stderr).toMatch(/undid the blocks an interrupted identity sync had written/)
    const now = readFileSync(file)
    const changed = new Set<number>()
    for (let i = 0; i < now.length; i++) if (now[i] !== orig[i]) changed.add(Math.floor(i / 1024))
    expect([...changed], 'blocks (1 KiB) that differ from before the sync').toEqual([1])
    const r = await resync(file)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/undid the blocks an interrupted identity sync had written/)
    console.log(`e2fsck -n after the kill: exit ${broken}; the next run undid it and synced`)
    await expectSynced(file)
  })

  it('a kill at every block write of the write batch: the next run always ends synced', async () => {
    const file = join(dir, 'var-sweep.raw')
    let kills = 0
    let preenCannot = 0
    for (let w = 1; w < 400; w += 2) {
      await makeVar(file)
      const killed = await resync(file, { batch: 1, write: w })
      if (killed.code === 0) break // fewer writes than w: the batch ran to its end
      kills++
      // Would e2fsck -p alone have repaired what the kill left? (on a copy; exit > 2: no)
      await execa('cp', ['--sparse=always', file, `${file}.copy`])
      if ((await execa('e2fsck', ['-f', '-p', `${file}.copy`], { reject: false, env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } })).exitCode! > 2) preenCannot++
      const r = await resync(file)
      expect(r.code, `kill at write ${w}: ${r.stderr}`).toBe(0)
      await expectSynced(file)
    }
    console.log(`killed at ${kills} block writes; e2fsck -p alone could not have repaired ${preenCannot} of them`)
    expect(kills).toBeGreaterThan(10)
  }, 300_000)

  it('a debugfs killed mid-batch while the script lives on: the same run puts its blocks back (old identity, data intact, fsck clean, no undo file) and fails; the next syncs', async () => {
    const file = join(dir, 'var-live.raw')
    await makeVar(file)
    for (const write of [3, 30, 60]) {
      const killed = await resync(file, { batch: 1, write, crash: false })
      expect(killed.code, killed.stderr).toBe(73)
      expect(killed.stderr).toMatch(/debugfs failed \(exit \d+\) writing the identity on .*; the blocks it had written were put back/)
      for (const [n, b] of OLD) expect(sha(await cat(file, `/identity/${n}`)), n).toBe(sha(b))
      expect(sha(await cat(file, '/home/data')), 'the guest data').toBe(sha(data))
      expect(await fsck(file)).toBe(0)
      expect(undoFiles(file)).toEqual([])
    }
    const r = await resync(file)
    expect(r.code, r.stderr).toBe(0)
    await expectSynced(file)
  })

  it('a /var the guest filled: the identity does not fit, the run puts back what it wrote and fails (exit 74) with the old identity whole', async () => {
    const file = join(dir, 'var-full.raw')
    await makeVar(file)
    // The guest filled its /var but for a few blocks: /identity.new is made, not all its files fit.
    const head = String((await execa('dumpe2fs', ['-h', file], { env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } })).stdout)
    const free = Number(/^Free blocks:\s+(\d+)/m.exec(head)![1]) * Number(/^Block size:\s+(\d+)/m.exec(head)![1])
    const filler = join(dir, 'filler')
    writeFileSync(filler, Buffer.alloc(free - 8192, 1))
    await execa(await debugfsPath(), ['-w', '-R', `write ${filler} /home/filler`, file])
    rmSync(filler)
    const r = await resync(file)
    expect(r.code, r.stderr).toBe(74)
    expect(r.stderr).toMatch(/\/identity\.new\/\S+ could not be written whole on .*is its filesystem full/)
    for (const [n, b] of OLD) expect(sha(await cat(file, `/identity/${n}`)), n).toBe(sha(b))
    expect(sha(await cat(file, '/home/data')), 'the guest data').toBe(sha(data))
    expect(await fsck(file)).toBe(0)
    expect(undoFiles(file)).toEqual([])
  })

  it('the guest mounted the filesystem since: the undo files are stale, removed unreplayed, its new data kept', async () => {
    const file = join(dir, 'var-mounted.raw')
    await makeVar(file)
    const killed = await resync(file, { batch: 1, write: 1 })
    expect(killed.code).not.toBe(0)
    expect(undoFiles(file).length).toBeGreaterThan(0)
    // What a boot does to it: a new last-mount time, and a file the guest wrote.
    const debugfs = await debugfsPath()
    writeFileSync(join(dir, 'guest-file'), 'written by the guest\n')
    await execa(debugfs, ['-w', '-R', 'ssv mtime 20300101000000', file])
    await execa(debugfs, ['-w', '-R', `write ${join(dir, 'guest-file')} /home/guest-file`, file])
    const r = await resync(file)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/mounted .* since an interrupted identity sync: its undo files are stale, removed/)
    expect(String(await cat(file, '/home/guest-file'))).toBe('written by the guest\n')
    await expectSynced(file)
  })
})
