// Nix: `nix build` of a flake output (command from the NIX override).
import { UserError } from '../errors.js'
import { words } from '../util/env.js'
import { run, which } from './exec.js'

export function nixCommand(env = process.env): string[] {
  const w = words(env.NIX)
  return w.length ? w : ['nix']
}

export async function nixAvailable(env = process.env): Promise<boolean> {
  return (await which(nixCommand(env)[0]!)) !== undefined
}

export const NO_NIX_HINT =
  'Install Nix (https://nixos.org/download: `sh <(curl -L https://nixos.org/nix/install) --daemon`; on Debian `apt-get install nix-setup-systemd`), ' +
  'point NIX at it, or build without Nix: `fleet build --builder debian`.'

/** Builds `installable` and returns its store path; nix's build log goes to `onOutput` as it comes. */
export async function nixBuild(installable: string, onOutput: (chunk: string) => void, env = process.env): Promise<string> {
  const r = await run(nixCommand(env), ['--extra-experimental-features', 'nix-command flakes', 'build', '--no-link', '--print-out-paths', '--print-build-logs', installable], { onStderr: onOutput })
  const out = r.stdout.trim().split('\n').filter(Boolean).pop()
  if (!out) throw new UserError(`nix build ${installable} printed no output path`)
  return out
}
