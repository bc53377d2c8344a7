// SSH public keys given on the command line or at a prompt: a file path or the key text itself;
// and the keys the admin already has in ~/.ssh, offered at the prompt.
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { dataLines } from '../machines/validate.js'


export async function readKeyArgs(values: string[]): Promise<string[]> {
  const keys: string[] = []
  for (const v of values) {
    if (v.trim() === 'none') continue // --admin-key none: no key at all (no default login key either)
    const p = v.startsWith('~/') ? homedir() + v.slice(1) : v
    if (!/^(ssh-|ecdsa-|sk-)/.test(v) && existsSync(p)) keys.push(...dataLines(await readFile(p, 'utf8')))
    else keys.push(v.trim())
  }
  return keys
}

export interface FoundKey {
  file: string
  key: string
}

/** The public keys in `home`/.ssh/*.pub, one entry per key line, sorted by file. */
export async function findPublicKeys(home: string = homedir()): Promise<FoundKey[]> {
  const dir = join(home, '.ssh')
  if (!existsSync(dir)) return []
  const found: FoundKey[] = []
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.pub') && !n.endsWith('-cert.pub')).sort()) {
    const file = join(dir, f)
    const text = await readFile(file, 'utf8').catch(() => '') // unreadable: not offered
    for (const key of dataLines(text)) found.push({ file, key })
  }
  return found
}
