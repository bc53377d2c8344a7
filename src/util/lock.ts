// Cross-process locks: an exclusively created lock file holding the owner's pid. A lock whose
// owner is gone is taken over; a live one makes us wait, then fail clearly.
import { mkdir, open, readFile, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BusyError } from '../errors.js'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function tryAcquire(file: string): Promise<boolean> {
  try {
    const fh = await open(file, 'wx')
    await fh.writeFile(`${process.pid}\n`)
    await fh.close()
    return true
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim())
    if (pid && pid !== process.pid && !alive(pid)) {
      await rm(file, { force: true })
      return tryAcquire(file)
    }
    return false
  }
}

export async function withLock<T>(file: string, what: string, fn: () => Promise<T>, waitMs = Number(process.env.FLEET_LOCK_WAIT_MS ?? 30_000)): Promise<T> {
  await mkdir(dirname(file), { recursive: true })
  const deadline = Date.now() + waitMs
  while (!(await tryAcquire(file))) {
    if (Date.now() >= deadline) {
      const pid = (await readFile(file, 'utf8').catch(() => '?')).trim()
      throw new BusyError(`${what} is locked by another fleet process (pid ${pid})`, `Wait for it to finish, or remove ${file} if that process is gone.`)
    }
    await sleep(200)
  }
  try {
    return await fn()
  } finally {
    await rm(file, { force: true })
  }
}
