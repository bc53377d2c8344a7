// Fault injection against the real libvirtd, qemu-img and guestfish: fleet is SIGKILLed at
// every step boundary of create-vm, upgrade (2 VMs), rollback, gc, image import and build, and
// at random moments; after each kill the next fleet command must recover — /var data intact,
// every overlay's backing image present, nothing orphaned, `fleet list` working.
import { execa } from 'execa'
import { existsSync, mkdirSync, readdirSync, readFileSync, appendFileSync, writeFileSync, chmodSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blankImage, fleet, FLEET, fleetJson, ROOT, sandbox, virsh } from '../helpers/fleet.js'
import { fleetKilled, orphans, sha256 } from '../helpers/faults.js'
import { libvirtMissing } from '../helpers/libvirt-required.js'
import { readVarDisks } from '../helpers/var-disk.js'

const sb = sandbox()
const HW = ['--memory', '256M', '--vcpus', '1', '--var-size', '64M', '--network', 'none', '--yes']
const CREATE_STEPS = ['create:definition', 'create:boot-overlay', 'create:var-disk', 'create:xml', 'create:define', 'create:start', 'create:commit']
const made: string[] = []

async function importAs(file: string, channel = 'base'): Promise<string> {
  return (await fleetJson<{ digest: string }>(sb, ['image', 'import', file, '--name', channel])).digest
}

async function domainExists(name: string): Promise<boolean> {
  return (await virsh(['domstate', name])).code === 0
}

async function listOk(): Promise<{ name: string; state: string; baseDigest: string }[]> {
  const r = await fleet(sb, ['list', '--json'])
  expect(r.code, r.stderr).toBe(0)
  return (JSON.parse(r.stdout) as { vms: { name: string; state: string; baseDigest: string }[] }).vms
}

describe.skipIf(libvirtMissing)('fault injection: kill -9 at every step, then the next command recovers', () => {
  let digestA = ''
  let digestB = ''
  beforeAll(async () => {
    await blankImage(join(sb.dir, 'a.qcow2'), '64M')
    await blankImage(join(sb.dir, 'b.qcow2'), '65M')
    digestB = await importAs(join(sb.dir, 'b.qcow2'))
    digestA = await importAs(join(sb.dir, 'a.qcow2'))
  })
  afterAll(async () => {
    for (const n of made) {
      await virsh(['destroy', n])
      await virsh(['undefine', '--nvram', n])
    }
    sb.cleanup()
  })

  it('create-vm: killed at each step, the next create-vm rolls the remains back and succeeds', async () => {
    for (const [i, at] of CREATE_STEPS.entries()) {
      const name = sb.name(`c${i}`)
      made.push(name)
      const k = await fleetKilled(sb, ['create-vm', name, ...HW, '--start'], { env: { FLEET_TEST_KILL_AT: at } })
      expect(k.signal, `${at}: ${k.stderr}`).toBe('SIGKILL')
      expect(existsSync(join(sb.state, 'ops', `vm-${name}.json`)), at).toBe(true)
      await listOk() // a half-made VM never breaks list
      const r = await fleet(sb, ['create-vm', name, ...HW])
      expect(r.code, `${at}: ${r.stderr}`).toBe(0)
      expect(r.stderr).toMatch(/recovered: rolled back the interrupted create-vm/)
      expect(await orphans(sb), at).toEqual([])
      expect(await domainExists(name)).toBe(true)
    }
  }, 300_000)

  it('create-vm: killed at random moments, the next create-vm recovers', async () => {
    for (let i = 0; i < 6; i++) {
      const name = sb.name(`r${i}`)
      made.push(name)
      const ms = 100 + Math.floor(Math.random() * 1800)
      const k = await fleetKilled(sb, ['create-vm', name, ...HW], { killAfterMs: ms })
      // Finished: it exited 0, or the kill came after its commit (no intent record left, the domain
      // there) while the process was still ending. The second run then finds the VM and refuses,
      // changing nothing; otherwise it recovers what the kill left and creates the VM.
      const ops = join(sb.state, 'ops')
      const finished = k.code === 0 || ((!existsSync(ops) || readdirSync(ops).length === 0) && (await domainExists(name)))
      const r = await fleet(sb, ['create-vm', name, ...HW])
      if (finished) expect(r.code, `killed after ${ms} ms (exit ${k.code}): ${r.stderr}`).toBe(2)
      else expect(r.code, `killed after ${ms} ms: ${r.stderr}`).toBe(0)
      expect(await orphans(sb), `killed after ${ms} ms`).toEqual([])
      expect(await domainExists(name)).toBe(true)
    }
    await listOk()
  }, 300_000)

  it('create-vm: SIGINT and SIGTERM at each step leave nothing behind and exit 130 / 143', async () => {
    for (const [i, at] of CREATE_STEPS.entries()) {
      const sig = i % 2 ? 'SIGTERM' : 'SIGINT'
      const name = sb.name(`s${i}`)
      made.push(name)
      const r = await fleetKilled(sb, ['create-vm', name, ...HW, '--start'], { env: { FLEET_TEST_SIGNAL_AT: `${at}:${sig}` } })
      expect(r.code, `${at} ${sig}: ${r.stderr}`).toBe(sig === 'SIGINT' ? 130 : 143)
      expect(r.stderr).toContain(`Interrupted by ${sig}`)
      expect(existsSync(join(sb.repo, 'machines', name)), at).toBe(false)
      expect(existsSync(join(sb.state, 'vms', name)), at).toBe(false)
      expect(existsSync(join(sb.repo, 'libvirt', `${name}.xml`)), at).toBe(false)
      expect(await domainExists(name), at).toBe(false)
      expect(await orphans(sb), at).toEqual([])
    }
  }, 300_000)

  it('create-vm: a real SIGINT/SIGTERM while a child runs stops the child, undoes, exits 130 / 143', async () => {
    // A qemu-img whose convert (the /var disk step) hangs, so the signal lands while it runs.
    const slow = join(sb.dir, 'qemu-img-slow')
    const started = join(sb.dir, 'convert-started')
    writeFileSync(slow, `#!/bin/sh\n[ "$1" = convert ] && { touch ${started}; exec sleep 30; }\nexec qemu-img "$@"\n`)
    chmodSync(slow, 0o755)
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const name = sb.name(`k${sig.toLowerCase()}`)
      const t0 = performance.now()
      rmSync(started, { force: true })
      const r = await fleetKilled({ env: { ...sb.env, QEMU_IMG: slow } }, ['create-vm', name, ...HW], { signalWhenExists: { file: started, signal: sig } })
      expect(r.code, r.stderr).toBe(sig === 'SIGINT' ? 130 : 143)
      expect(performance.now() - t0).toBeLessThan(20_000) // the child was stopped, not waited for
      expect(r.stderr).toMatch(/Undone after the failure: removed .*boot overlay/)
      expect(existsSync(join(sb.state, 'vms', name))).toBe(false)
      expect(existsSync(join(sb.repo, 'machines', name))).toBe(false)
      expect(await orphans(sb)).toEqual([])
    }
  }, 120_000)

  describe('upgrade of two VMs (one running)', () => {
    const u1 = sb.name('u1')
    const u2 = sb.name('u2')
    const home: Record<string, string> = {}
    // The running VM boots a blank disk: nothing in it could answer a health check.
    const UP = ['upgrade', u1, u2, '--force', '--timeout', '1', '--health', 'none']
    let target = ''
    const flip = async () => {
      // Move the channel to the other image, so there is something to upgrade to.
      target = target === digestB ? digestA : digestB
      await importAs(join(sb.dir, target === digestA ? 'a.qcow2' : 'b.qcow2'))
    }
    const check = async (why: string) => {
      expect(await orphans(sb), why).toEqual([])
      const vms = await listOk()
      for (const n of [u1, u2]) expect(vms.find((v) => v.name === n)?.baseDigest, `${why}: ${n}`).toBe(target)
      expect(vms.find((v) => v.name === u1)?.state, `${why}: u1 ran before, so it runs after`).toBe('running')
      expect(vms.find((v) => v.name === u2)?.state, why).toBe('shut off')
    }

    beforeAll(async () => {
      made.push(u1, u2)
      for (const n of [u1, u2]) expect((await fleet(sb, ['create-vm', n, ...HW])).code).toBe(0)
      // A file in each VM's /home (on its /var disk) that every upgrade must keep byte for byte.
      const args = ['--rw', '--format=qcow2']
      const cmds: string[] = []
      for (const [i, n] of [u1, u2].entries()) {
        const data = join(sb.dir, `${n}.home`)
        writeFileSync(data, randomBytes(256 * 1024))
        home[n] = sha256(data)
        args.push('-a', join(sb.state, 'vms', n, 'var.qcow2'))
        cmds.push(':', 'mount', `/dev/sd${'ab'[i]}`, '/', ':', 'upload', data, '/home/data', ':', 'umount', '/')
      }
      await execa('guestfish', [...args, '--', 'run', ...cmds], { env: { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' } })
      expect((await fleet(sb, ['start-vm', u1])).code).toBe(0)
      target = digestA
    }, 180_000)

    it('a VM that ignores the shutdown request fails alone: it stays running on its old image, the rollout stops before the other, exit 3', async () => {
      const before = (await listOk()).find((v) => v.name === u1)!.baseDigest
      await flip()
      const r = await fleet(sb, ['upgrade', u1, u2, '--timeout', '1', '--health', 'none', '--json'])
      expect(r.code, r.stderr).toBe(3)
      const out = JSON.parse(r.stdout) as { stopped?: string; vms: { name: string; outcome: string; image: string; error?: string; state?: string }[] }
      expect(out.vms.find((v) => v.name === u1)).toMatchObject({ outcome: 'failed', image: before, error: expect.stringMatching(/still running 1s after the shutdown request/), state: expect.stringMatching(/on its old image .*running/) })
      // Running VMs go first, stopped ones only after every wave came through.
      expect(out.vms.find((v) => v.name === u2)).toMatchObject({ outcome: 'not started', image: before })
      expect(out.stopped).toMatch(/stopped after wave 1/)
      const vms = await listOk()
      expect(vms.find((v) => v.name === u1)).toMatchObject({ state: 'running', baseDigest: before })
      expect(vms.find((v) => v.name === u2)?.baseDigest).toBe(before)
      expect(await orphans(sb)).toEqual([])
      // Bring both to the target, so the rounds below start from one image.
      expect((await fleet(sb, UP)).code).toBe(0)
    }, 120_000)

    it('killed at each step boundary: the next upgrade finishes or rolls back, all-or-nothing per VM', async () => {
      for (const at of ['upgrade:stop', 'upgrade:overlay', 'upgrade:switch', 'upgrade:defined', 'upgrade:switched']) {
        await flip()
        const k = await fleetKilled(sb, UP, { env: { FLEET_TEST_KILL_AT: at } })
        expect(k.signal, `${at}: ${k.stderr}`).toBe('SIGKILL')
        await listOk()
        const r = await fleet(sb, UP)
        expect(r.code, `${at}: ${r.stderr}`).toBe(0)
        expect(r.stderr, at).toMatch(/recovered: (finished|rolled back) the interrupted upgrade/)
        await check(at)
      }
    }, 300_000)

    it('killed at random moments: the next upgrade recovers', async () => {
      for (let i = 0; i < 4; i++) {
        await flip()
        const ms = 200 + Math.floor(Math.random() * 2500)
        await fleetKilled(sb, UP, { killAfterMs: ms })
        const r = await fleet(sb, UP)
        expect(r.code, `killed after ${ms} ms: ${r.stderr}`).toBe(0)
        await check(`killed after ${ms} ms`)
      }
    }, 300_000)

    it('a VM that fails its health check is rolled back and restarted; killed at each step of that, repair finishes it running', async () => {
      // A pattern the blank disk never prints: unhealthy after 1 s, so every upgrade of u1 is rolled back.
      const BAD = ['upgrade', u1, u2, '--force', '--timeout', '1', '--health', 'console:^NEVER-PRINTED$', '--health-timeout', '1']
      const before = target
      await flip()
      const r = await fleet(sb, [...BAD, '--json'])
      expect(r.code, r.stderr).toBe(3)
      const out = JSON.parse(r.stdout) as { vms: { name: string; outcome: string; image: string; healthy?: boolean }[] }
      expect(out.vms.find((v) => v.name === u1)).toMatchObject({ outcome: 'rolled back', image: before, healthy: false })
      expect(out.vms.find((v) => v.name === u2)).toMatchObject({ outcome: 'not started', image: before })
      for (const at of ['rollback:stop', 'rollback:swap', 'rollback:swapping', 'rollback:define', 'rollback:start']) {
        const k = await fleetKilled(sb, BAD, { env: { FLEET_TEST_KILL_AT: at } })
        expect(k.signal, `${at}: ${k.stderr}`).toBe('SIGKILL')
        const rep = await fleet(sb, ['repair'])
        expect(rep.code, `${at}: ${rep.stderr}`).toBe(0)
        expect(rep.stdout, at).toMatch(/finished the interrupted rollback: on .*, running/)
        expect(await orphans(sb), at).toEqual([])
        const vms = await listOk()
        expect(vms.find((v) => v.name === u1), at).toMatchObject({ state: 'running', baseDigest: before })
        expect(vms.find((v) => v.name === u2)?.baseDigest, at).toBe(before)
        expect((await virsh(['dumpxml', u1])).stdout, at).toContain(`digest="${before}"`)
        // Rollback points kept: .previous and at most one older (--keep 2).
        expect(readdirSync(join(sb.state, 'vms', u1)).filter((f) => f.startsWith('boot.qcow2.')).length, at).toBeLessThanOrEqual(2)
      }
      expect((await fleet(sb, UP)).code).toBe(0) // both onto the target again for what follows
      await check('after the rollbacks')
    }, 300_000)

    it('killed right after the shutdown request, the stop landing while the next run recovers: the VM that ran runs afterwards', async () => {
      await flip()
      const k = await fleetKilled(sb, ['upgrade', u1, u2, '--force', '--timeout', '30'], { env: { FLEET_TEST_KILL_AT: 'upgrade:stop-requested' } })
      expect(k.signal, k.stderr).toBe('SIGKILL')
      // What a guest acting on the ACPI request late (or a destroy libvirtd was still carrying out)
      // does: the VM goes off after the next run has looked at it and found it running.
      const next = execa(FLEET, UP, { env: sb.env, reject: false, stdin: 'ignore', timeout: 120_000 })
      let err = ''
      const waiting = new RegExp(`machine ${u1}: the interrupted upgrade asked it to shut down; waiting`)
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`the recovery never waited for the stop in flight:\n${err}`)), 60_000)
        next.stderr!.on('data', (b: Buffer) => {
          err += String(b)
          if (waiting.test(err)) { clearTimeout(t); res() }
        })
      })
      expect((await virsh(['destroy', u1])).code).toBe(0)
      const r = await next
      expect(r.exitCode, String(r.stderr)).toBe(0)
      expect(String(r.stderr)).toMatch(/rolled back the interrupted upgrade: .*restarted/)
      await check('stop landed during recovery')
    }, 180_000)

    it('killed at the identity resync (and inside the appliance run): rolled forward, identity new, /home kept', async () => {
      // Killed at the step (the recovery then syncs without an appliance, the default), and 12 s into
      // an upgrade that uses the appliance (FLEET_VAR_METHOD=guestfish), inside its run.
      for (const [i, how] of [{ env: { FLEET_TEST_KILL_AT: 'upgrade:identity' } }, { env: { FLEET_VAR_METHOD: 'guestfish' }, killAfterMs: 12_000 }].entries()) {
        for (const n of [u1, u2]) appendFileSync(join(sb.repo, 'machines', n, 'hosts'), `10.9.9.${i + 1} extra${i}.example\n`)
        const k = await fleetKilled(sb, UP, how)
        expect(k.signal, k.stderr).toBe('SIGKILL')
        const r = await fleet(sb, UP, { timeoutMs: 400_000 })
        expect(r.code, r.stderr).toBe(0)
        expect(await orphans(sb)).toEqual([])
      }
      await fleet(sb, ['stop-vm', u1, '--force', '--timeout', '1'])
      const disks = await readVarDisks([u1, u2].map((n) => join(sb.state, 'vms', n, 'var.qcow2')))
      for (const [i, n] of [u1, u2].entries()) {
        expect(disks[i]!.files['/identity/hosts']?.content).toBe(readFileSync(join(sb.repo, 'machines', n, 'hosts'), 'utf8'))
        expect(disks[i]!.dirs).not.toContain('/identity.new')
        expect(disks[i]!.dirs).not.toContain('/identity.old')
      }
      // /home/data compared byte for byte: guestfish copies it out.
      const out = join(sb.dir, 'out')
      mkdirSync(out, { recursive: true })
      await execa('guestfish', ['--ro', '--format=qcow2', '-a', join(sb.state, 'vms', u1, 'var.qcow2'), '-a', join(sb.state, 'vms', u2, 'var.qcow2'), '--', 'run',
        ':', 'mount-ro', '/dev/sda', '/', ':', 'download', '/home/data', join(out, u1), ':', 'umount', '/',
        ':', 'mount-ro', '/dev/sdb', '/', ':', 'download', '/home/data', join(out, u2)], { env: { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' } })
      for (const n of [u1, u2]) expect(sha256(join(out, n)), `${n} /home/data`).toBe(home[n])
      expect((await fleet(sb, ['start-vm', u1])).code).toBe(0)
    }, 600_000)

    it('upgrade again with nothing changed: unchanged, rollback point kept, rollback works', async () => {
      const prev = (n: string) => sha256(join(sb.state, 'vms', n, 'boot.qcow2.previous'))
      const before = [prev(u1), prev(u2)]
      const r = await fleetJson<{ vms: { name: string; outcome: string }[] }>(sb, UP)
      expect(r.vms.map((v) => v.outcome)).toEqual(['unchanged', 'unchanged'])
      expect([prev(u1), prev(u2)]).toEqual(before)
      const rb = await fleetJson<{ baseTo: string }>(sb, ['rollback', u2])
      expect(rb.baseTo).toBe(target === digestA ? digestB : digestA)
      target = rb.baseTo
      expect((await listOk()).find((v) => v.name === u2)?.baseDigest).toBe(target)
    }, 120_000)

    it('rollback killed at each step: the next command finishes it, the definition matches the overlay', async () => {
      for (const at of ['rollback:swap', 'rollback:swapping', 'rollback:define']) {
        const k = await fleetKilled(sb, ['rollback', u2], { env: { FLEET_TEST_KILL_AT: at } })
        expect(k.signal, `${at}: ${k.stderr}`).toBe('SIGKILL')
        const r = await fleet(sb, ['repair'])
        expect(r.code, r.stderr).toBe(0)
        expect(r.stdout, at).toMatch(/finished the interrupted rollback/)
        expect(await orphans(sb), at).toEqual([])
        const on = (await listOk()).find((v) => v.name === u2)!.baseDigest
        expect((await virsh(['dumpxml', u2])).stdout, at).toContain(`digest="${on}"`)
        expect(existsSync(join(sb.state, 'vms', u2, 'boot.qcow2.previous'))).toBe(true)
      }
    }, 120_000)
  })

  it('gc: killed while deleting, run again; never deletes an image an overlay or channel needs', async () => {
    await blankImage(join(sb.dir, 'c.qcow2'), '66M')
    await blankImage(join(sb.dir, 'd.qcow2'), '67M')
    const current = JSON.parse(readFileSync(join(sb.state, 'images', 'channels.json'), 'utf8')).base.digest as string
    await importAs(join(sb.dir, 'c.qcow2'), 'spare')
    await importAs(join(sb.dir, 'd.qcow2'), 'spare') // c is now referenced by nothing
    const k = await fleetKilled(sb, ['gc'], { env: { FLEET_TEST_KILL_AT: 'gc:delete' } })
    expect(k.signal, k.stderr).toBe('SIGKILL')
    const r = await fleetJson<{ deleted: { digest: string }[] }>(sb, ['gc'])
    expect(r.deleted.length).toBe(1)
    expect(await orphans(sb)).toEqual([])
    expect(existsSync(join(sb.state, 'images', `${current}.qcow2`))).toBe(true)
  }, 120_000)

  it('image import: killed at each step; the next store command cleans up and the channel never points at a missing file', async () => {
    for (const [i, at] of ['import:copy', 'import:verify', 'import:store', 'import:channel'].entries()) {
      const f = join(sb.dir, `e${i}.qcow2`)
      await blankImage(f, `${70 + i}M`)
      const k = await fleetKilled(sb, ['image', 'import', f, '--name', 'edge'], { env: { FLEET_TEST_KILL_AT: at } })
      expect(k.signal, `${at}: ${k.stderr}`).toBe('SIGKILL')
      const r = await fleet(sb, ['gc'])
      expect(r.code, r.stderr).toBe(0)
      expect(await orphans(sb), at).toEqual([])
      const channels = JSON.parse(readFileSync(join(sb.state, 'images', 'channels.json'), 'utf8')) as Record<string, { digest: string }>
      for (const [c, v] of Object.entries(channels)) expect(existsSync(join(sb.state, 'images', `${v.digest}.qcow2`)), c).toBe(true)
    }
  }, 120_000)

  it('gc while an import holds the store keeps the imported image', async () => {
    const f = join(sb.dir, 'g.qcow2')
    await blankImage(f, '80M')
    const imp = fleetKilled(sb, ['image', 'import', f, '--name', 'held', '--json'], { env: { FLEET_TEST_PAUSE_AT: 'import:store:3000' } })
    await new Promise((r) => setTimeout(r, 1000))
    const g = await fleet(sb, ['gc'])
    const i = await imp
    expect(i.code, i.stderr).toBe(0)
    expect(g.code, g.stderr).toBe(0)
    const digest = (JSON.parse(i.stdout) as { digest: string }).digest
    expect(existsSync(join(sb.state, 'images', `${digest}.qcow2`))).toBe(true)
    expect(g.stderr).toMatch(/Waiting up to \d+s for image store/)
  }, 60_000)

  it('build: killed at each step and at random, the next command removes its scratch folder', async () => {
    const env = { NIX: join(ROOT, 'test', 'fixtures', 'fake-nix'), FAKE_NIX_STORE: join(sb.dir, 'nix-store') }
    mkdirSync(env.FAKE_NIX_STORE, { recursive: true })
    for (const how of [{ env: { ...env, FLEET_TEST_KILL_AT: 'build:store' } }, { env: { ...env, FLEET_TEST_KILL_AT: 'import:verify' } }, { env, killAfterMs: 700 }]) {
      await fleetKilled(sb, ['build', '--builder', 'nix', '--no-verify', '--channel', 'built', '--compress'], how)
      const r = await fleet(sb, ['repair'])
      expect(r.code, r.stderr).toBe(0)
      expect(await orphans(sb)).toEqual([])
    }
  }, 120_000)

  it('two concurrent create-vm of one name: exactly one wins, its disks untouched', async () => {
    const name = sb.name('race')
    made.push(name)
    const first = fleetKilled(sb, ['create-vm', name, ...HW, '--json'], { env: { FLEET_TEST_PAUSE_AT: 'create:commit:1500' } })
    await new Promise((r) => setTimeout(r, 300))
    const second = fleetKilled(sb, ['create-vm', name, ...HW, '--json'])
    const a = await first
    const varFile = join(sb.state, 'vms', name, 'var.qcow2')
    const sum = sha256(varFile)
    const b = await second
    expect([a.code, b.code].sort()).toEqual([0, 2])
    expect(a.code, a.stderr).toBe(0)
    expect(b.stdout + b.stderr).toMatch(/already exists|created by another fleet process/)
    expect(sha256(varFile)).toBe(sum)
    expect(await orphans(sb)).toEqual([])
  }, 120_000)

  it('a half-written definition (machines/.NAME.new-*) is never a machine; repair removes it', async () => {
    const name = sb.name('half')
    const half = join(sb.repo, 'machines', `.${name}.new-x1y2z3`)
    mkdirSync(half)
    writeFileSync(join(half, 'machine.json'), '{"memory": "256M"')
    expect((await listOk()).map((v) => v.name)).not.toContain(`.${name}.new-x1y2z3`)
    const dry = await fleet(sb, ['repair', '--dry-run'])
    expect(dry.stdout).toContain(`machine ${name}`)
    expect(existsSync(half)).toBe(true)
    const r = await fleet(sb, ['repair'])
    expect(r.code, r.stderr).toBe(0)
    expect(existsSync(half)).toBe(false)
    expect(await orphans(sb)).toEqual([])
  })

  it('destroy-vm refuses names that are paths, removing nothing', async () => {
    const before = readdirSync(join(sb.state, 'vms')).sort()
    for (const bad of ['..', '../x', '/etc', '.', 'a/b', 'Web1']) {
      const r = await fleet(sb, ['destroy-vm', bad, '--delete-data', '--yes'])
      expect(r.code, `${bad}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toContain(JSON.stringify(bad))
    }
    expect(readdirSync(join(sb.state, 'vms')).sort()).toEqual(before)
    expect(existsSync(join(sb.state, 'images'))).toBe(true)
  })
})
