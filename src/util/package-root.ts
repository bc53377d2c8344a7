// Where fleet is installed: the folder with its package.json, nix/ and images/. Found by walking
// up from this module, which sits at different depths in the tsc output (dist/util/), the bundle
// (dist/bundle/ or dist/bundle/commands/…, wherever esbuild put the code) and the sources (tests).
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let root: string | undefined

export function packageRoot(): string {
  if (root) return root
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}: fleet is not installed as a package`)
    dir = up
  }
  return (root = dir)
}
