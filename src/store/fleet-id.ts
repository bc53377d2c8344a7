// The state directory's fleet id: a random UUID made on first use and never changed. Every
// domain fleet defines carries it in its metadata, so a fleet can tell its own domains from
// those of another fleet (another state directory) or of another tool.
import { nodeCrypto } from '../util/builtin.js'
import { constants } from 'node:fs'
import { link, mkdir, open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { UserError } from '../errors.js'
import type { Paths } from '../repo.js'
import { fsyncDir } from '../util/fsx.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export function fleetIdFile(paths: Pick<Paths, 'state'>): string {
  return join(paths.state, 'fleet-id')
}

/** This state directory's fleet id, or undefined if none was made yet. Writes nothing. */
export async function readFleetId(paths: Pick<Paths, 'state'>): Promise<string | undefined> {
  const file = fleetIdFile(paths)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
  const id = text.trim()
  if (!UUID.test(id)) {
    throw new UserError(`${file} does not hold a fleet id (a UUID): ${JSON.stringify(text.slice(0, 80))}`,
      `Restore it from a backup of this state directory; its domains carry that id. Deleting it makes fleet treat all of them as foreign.`)
  }
  return id
}

/**
 * This state directory's fleet id, made on first use. The new id is written to a temp file,
 * fsync'd, then link(2)ed into place — a rename that never replaces — and the folder fsync'd:
 * two fleets racing here both end up with the one id that won, never half a file.
 */
export async function fleetId(paths: Pick<Paths, 'state'>): Promise<string> {
  const existing = await readFleetId(paths)
  if (existing) return existing
  const file = fleetIdFile(paths)
  await mkdir(paths.state, { recursive: true })
  const tmp = `${file}.tmp-${process.pid}-${nodeCrypto().randomBytes(4).toString('hex')}` // unique even between racers in one process
  try {
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644)
    try {
      await fh.writeFile(`${nodeCrypto().randomUUID()}\n`)
      await fh.sync()
    } finally {
      await fh.close()
    }
    try {
      await link(tmp, file)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e // another process won: use its id
    }
  } finally {
    await rm(tmp, { force: true })
  }
  await fsyncDir(paths.state)
  const id = await readFleetId(paths)
  if (!id) throw new Error(`${file} vanished right after it was written`)
  return id
}
