// The .gitignore lines fleet writes about host keys. Private keys are committed encrypted; the
// plaintext name stays ignored, so a stray decrypted copy can never be committed by accident.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../util/fsx.js'

export const HOST_KEY_IGNORE = `# Private SSH host keys are committed encrypted (machines/*/ssh_host_*_key.age, to the keys in
# .fleet/recipients); a plaintext copy must never be committed.
machines/*/ssh_host_*_key
`

/** What \`fleet init\` wrote before host keys were encrypted. */
const OLD_COMMENT = '# Private SSH host keys never go into git; back them up elsewhere.\n'

/** Replaces the old comment (or adds the block); true if the file changed. */
export async function updateGitignore(repo: string): Promise<boolean> {
  const file = join(repo, '.gitignore')
  const text = existsSync(file) ? await readFile(file, 'utf8') : ''
  if (text.includes(HOST_KEY_IGNORE)) return false
  let next: string
  if (text.includes(OLD_COMMENT + 'machines/*/ssh_host_*_key\n')) next = text.replace(OLD_COMMENT + 'machines/*/ssh_host_*_key\n', HOST_KEY_IGNORE)
  else next = HOST_KEY_IGNORE + (text ? `${text.endsWith('\n') ? '' : '\n'}${text}` : '')
  await writeFileAtomic(file, next)
  return true
}
