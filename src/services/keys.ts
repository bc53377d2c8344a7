// SSH public keys given on the command line: a file path or the key text itself.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'

export async function readKeyArgs(values: string[]): Promise<string[]> {
  const keys: string[] = []
  for (const v of values) {
    const p = v.startsWith('~/') ? homedir() + v.slice(1) : v
    if (!/^(ssh-|ecdsa-|sk-)/.test(v) && existsSync(p)) {
      keys.push(...(await readFile(p, 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')))
    } else keys.push(v.trim())
  }
  return keys
}
