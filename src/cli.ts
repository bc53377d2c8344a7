// The entry of the bundled CLI (scripts/bundle.mjs → dist/bundle/cli.js, which bin/fleet runs):
// bundled with the commands, so all of them and this entry share one copy of oclif.
import { execute } from '@oclif/core/execute'
import type { PJSON } from '@oclif/core/interfaces'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Runs fleet for bin/fleet. One of fleet's own commands (its module is in the bundle) runs without
 * loading oclif's plugins: help and autocomplete are commands of their own, and finding and
 * reading them is a fifth of oclif's start-up. Help, autocomplete, a bare `fleet`, topics and
 * mistyped commands (whose suggestions include the plugins' commands) load everything.
 */
export async function run(root: string, argv = process.argv.slice(2)): Promise<unknown> {
  const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PJSON & { oclif: { commands: string } }
  // `list`, `image list` or `image:list`: the command's words come before its first flag.
  const words = argv.slice(0, 2).filter((a, i, all) => !all.slice(0, i + 1).some((b) => b.startsWith('-'))).flatMap((w) => w.split(':'))
  const own = [words.slice(0, 1), words.slice(0, 2)].some((w) => w.length > 0 && existsSync(join(root, pjson.oclif.commands, ...w) + '.js'))
  return execute({ args: argv, loadOptions: { root, pjson: own ? { ...pjson, oclif: { ...pjson.oclif, plugins: [] } } : pjson } })
}
