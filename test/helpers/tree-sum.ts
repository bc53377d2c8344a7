// A checksum of everything under some folders (names, types, modes, owners, contents, link
// targets), taken without following links or opening fifos, so "nothing changed" can be proved.
import { createHash } from 'node:crypto'
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { join, relative } from 'node:path'

/** One line per entry: path, type, mode, owner, and content hash or link target. */
export function treeLines(root: string): string[] {
  const out: string[] = []
  const walk = (p: string) => {
    const st = lstatSync(p)
    const rel = relative(root, p) || '.'
    const head = `${rel} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`
    if (st.isSymbolicLink()) out.push(`${head} link ${readlinkSync(p)}`)
    else if (st.isFile()) out.push(`${head} file ${createHash('sha256').update(readFileSync(p)).digest('hex')}`)
    else if (st.isDirectory()) {
      out.push(`${head} dir`)
      for (const e of readdirSync(p).sort()) walk(join(p, e))
    } else out.push(`${head} special`)
  }
  if (existsSync(root)) walk(root)
  return out
}

/**
 * sha256 over the trees of `roots`, and the lines for a readable diff when it differs. Lock files
 * (`locks/*.lock` in the state directory) are left out: fleet flocks them and never deletes them.
 */
export function treeSum(...roots: string[]): { sum: string; lines: string[] } {
  const lines = roots.flatMap((r) => treeLines(r).filter((l) => !/^locks\/[^/ ]+\.lock /.test(l)).map((l) => `${r}/${l}`))
  return { sum: createHash('sha256').update(lines.join('\n')).digest('hex'), lines }
}
