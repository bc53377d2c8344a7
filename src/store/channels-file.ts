// images/channels.json as read back: every key a channel key, every value a digest record.
// Anything else is an exit-2 error naming the file and the entry; the result has no prototype,
// so a channel called "constructor" is just a missing key, never Object.prototype.constructor.
import { UserError } from '../errors.js'
import { ARCHES } from '../machines/model.js'
import { DataFileRefused, readDataFile } from '../util/data-file.js'

export interface ChannelRecord {
  digest: string
  updated: string
  /** Digests this channel pointed at before, newest first. */
  previous: string[]
}

const DIGEST = /^[0-9a-f]{64}$/
const KEY = new RegExp(`^[a-z0-9][a-z0-9._-]{0,63}(@(${ARCHES.join('|')}))?$`)

/** channels.json holds a few hundred bytes per channel; this is far more than any store needs. */
const CHANNELS_MAX = 4 * 1024 * 1024

/** A record whose keys are data: no prototype, so no inherited names. */
export function emptyChannels<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>
}

/** Parses channels.json text; throws a UserError naming the file and what is wrong. */
export function parseChannels<T extends ChannelRecord>(file: string, text: string): Record<string, T> {
  const fail = (what: string): never => {
    throw new UserError(`${file} is corrupt: ${what}`,
      `Fix or remove that entry by hand (the images stay in the store; \`fleet image import\` or \`fleet build\` points a channel again).`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    return fail(`not valid JSON (${(e as Error).message})`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(`must be a JSON object, got ${Array.isArray(raw) ? 'an array' : JSON.stringify(raw)}`)
  const out = emptyChannels<T>()
  for (const [key, value] of Object.entries(raw)) {
    if (!KEY.test(key)) fail(`key ${JSON.stringify(key)} is not a channel name (CHANNEL or CHANNEL@ARCH)`)
    const where = `channel ${JSON.stringify(key)}`
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where} must be an object, got ${JSON.stringify(value)}`)
    const v = value as Record<string, unknown>
    const d = Object.hasOwn(v, 'digest') ? v.digest : undefined
    if (typeof d !== 'string' || !DIGEST.test(d)) fail(`${where}: digest ${JSON.stringify(d)} is not a sha256 hex digest`)
    const updated = Object.hasOwn(v, 'updated') ? v.updated : undefined
    if (typeof updated !== 'string') fail(`${where}: updated ${JSON.stringify(updated)} must be a date string`)
    const prev = Object.hasOwn(v, 'previous') ? v.previous : undefined
    if (!Array.isArray(prev)) fail(`${where}: previous ${JSON.stringify(prev)} must be a list of digests`)
    const badPrev = (prev as unknown[]).find((p) => typeof p !== 'string' || !DIGEST.test(p))
    if (badPrev !== undefined) fail(`${where}: previous digest ${JSON.stringify(badPrev)} is not a sha256 hex digest`)
    out[key] = { digest: d, updated, previous: [...(prev as string[])] } as T
  }
  return out
}

/** Reads and parses channels.json (absent: no channels). */
export async function loadChannelsFile<T extends ChannelRecord>(file: string): Promise<Record<string, T>> {
  let bytes: Buffer | undefined
  try {
    bytes = await readDataFile(file, CHANNELS_MAX)
  } catch (e) {
    if (e instanceof DataFileRefused) throw new UserError(`${e.message}`, 'Restore images/channels.json as a plain file.', { cause: e })
    throw e
  }
  return bytes === undefined ? emptyChannels<T>() : parseChannels<T>(file, bytes.toString('utf8'))
}
