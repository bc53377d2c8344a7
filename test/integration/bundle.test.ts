// bin/fleet runs the bundled CLI (dist/bundle, scripts/bundle.mjs): the files fleet ships are
// still found from there, and fleet's own commands (which start without oclif's plugins) and the
// plugins' commands (help, autocomplete) all run.
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { packageRoot } from '../../src/util/package-root.js'
import { fleet, ROOT, sandbox } from '../helpers/fleet.js'

const sb = sandbox()
// init writes your identity under HOME, autocomplete its cache: both inside the sandbox.
const home = join(sb.dir, 'home')
mkdirSync(home)
const env = { env: { ...sb.env, HOME: home } }
afterAll(() => sb.cleanup())

describe('the bundled CLI', () => {
  it('packageRoot() is the folder with package.json, nix/ and the Debian overlay', () => {
    expect(packageRoot()).toBe(ROOT)
    expect(existsSync(join(packageRoot(), 'nix', 'flake.nix'))).toBe(true)
    expect(existsSync(join(packageRoot(), 'images', 'debian', 'rootfs'))).toBe(true)
  })

  it('fleet init copies the flake fleet ships into the new repository', async () => {
    const repo = join(sb.dir, 'new-repo')
    const r = await fleet(env, ['init', repo, '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(existsSync(join(repo, 'nix', 'fleet', 'flake.nix'))).toBe(true)
    rmSync(repo, { recursive: true, force: true })
  })

  it("fleet's own commands, one or two words, and the plugins' commands run", async () => {
    for (const args of [['list', '--json'], ['image', 'list', '--json'], ['image:list', '--json']]) {
      const r = await fleet(env, args)
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0)
      expect(() => JSON.parse(r.stdout) as unknown, args.join(' ')).not.toThrow()
    }
    const help = await fleet(env, ['help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/\n {2}autocomplete +Display autocomplete/)
    expect(help.stdout).toMatch(/\n {2}list +List machines/)
    const ac = await fleet(env, ['autocomplete', 'bash'])
    expect(ac.code, ac.stderr).toBe(0)
    expect(ac.stdout).toContain('Setup Instructions for FLEET CLI Autocomplete')
  })
})
