// Locks that die with their process: flock on a held descriptor, never pid files.
import { execa } from 'execa'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT } from '../helpers/fleet.js'

const dir = mkdtempSync(join(tmpdir(), 'fleet-test-locks-'))
const distLock = join(ROOT, 'dist', 'util', 'lock.js')
const { acquire, tryAcquire } = await import(distLock) as typeof import('../../src/util/lock.js')

describe('locks', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('three processes racing 100 rounds over a stale or empty lock file: never two holders', async () => {
    const lock = join(dir, 'race.lock')
    const marker = join(dir, 'holder')
    writeFileSync(lock, '') // an empty lock, as a kill between create and pid write left one
    const racer = join(ROOT, 'test', 'fixtures', 'lock-racer.mjs')
    const runs = await Promise.all([0, 1, 2].map(() => execa('node', [racer, distLock, lock, marker, '100'])))
    expect(runs.map((r) => Number(r.stdout))).toEqual([0, 0, 0])
    expect(existsSync(marker)).toBe(false)
  }, 120_000)

  it('a holder killed with SIGKILL frees the lock at once; the lock file stays', async () => {
    const lock = join(dir, 'killed.lock')
    const holder = execa('node', ['-e', `import(${JSON.stringify(distLock)}).then(async (m) => { await m.acquire(${JSON.stringify(lock)}, 'x'); console.log('held'); setInterval(() => {}, 1000) })`])
    await new Promise<void>((resolve) => holder.stdout!.on('data', (d: Buffer) => String(d).includes('held') && resolve()))
    expect(await tryAcquire(lock)).toBeUndefined()
    holder.kill('SIGKILL')
    await holder.catch(() => undefined)
    const t0 = performance.now()
    const l = await acquire(lock, 'x', { waitMs: 5000 })
    expect(performance.now() - t0).toBeLessThan(2000)
    await l.release()
    expect(existsSync(lock)).toBe(true)
  }, 30_000)

  it('busy: waits, then fails with exit-4 BusyError naming the holder', async () => {
    const lock = join(dir, 'busy.lock')
    const a = await acquire(lock, 'machine web1')
    const waits: string[] = []
    const err = await acquire(lock, 'machine web1', { waitMs: 300, onWait: (l) => waits.push(l) }).catch((e: Error) => e)
    expect(err).toMatchObject({ name: 'BusyError', exitCode: 4 })
    expect((err as Error).message).toMatch(new RegExp(`machine web1 is locked by pid ${process.pid}`))
    expect(waits[0]).toMatch(/Waiting up to 0s for machine web1/)
    await a.release()
  })

  it('shared holders coexist; an exclusive one waits for them', async () => {
    const lock = join(dir, 'shared.lock')
    const s1 = await acquire(lock, 'store', { shared: true })
    const s2 = await acquire(lock, 'store', { shared: true })
    expect(await tryAcquire(lock)).toBeUndefined()
    await s1.release()
    await s2.release()
    const x = await tryAcquire(lock)
    expect(x).toBeDefined()
    await x!.release()
  })
})
