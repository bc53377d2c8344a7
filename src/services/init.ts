// fleet init: scaffolds an admin's fleet repository.
import { existsSync } from 'node:fs'
import { cp, mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { UserError } from '../errors.js'
import { adminRecipient } from '../secrets/admin-key.js'
import { HOST_KEY_IGNORE } from '../secrets/gitignore.js'
import { Keyring } from '../secrets/identities.js'
import { recipientsFile, writeRecipients } from '../secrets/recipients.js'
import { packageRoot } from '../util/package-root.js'

/** The nix/ folder fleet ships (package root/nix). */
export function shippedNixDir(): string {
  return join(packageRoot(), 'nix')
}

const GITIGNORE = `${HOST_KEY_IGNORE}# Disk images live in the state directory, not here.
*.qcow2
*.raw
result
`

const FLAKE = `{
  description = "Base images of this fleet";
  # The flake fleet ships (its modules implement the guest contract); see fleet/README.md.
  inputs.fleet.url = "path:./fleet";
  outputs = { self, fleet, ... }:
    fleet.lib.mkFleetOutputs {
      # NixOS modules every image gets, e.g. ./site.nix.
      modules = [ ];
      # One image per channel: "fleet build --channel NAME" builds images.NAME, and every
      # machine boots the image of the channel its spec names ("base": "base" by default).
      # Role images add their own modules, for example:
      #   web = [ ./web.nix ];
      #   db = [ ./db.nix ];
      images = {
        base = [ ];
      };
    };
}
`

export interface InitResult {
  repo: string
  created: string[]
  /** .fleet/recipients: the admin's public key, to which every machine's host key is encrypted. */
  recipients: string[]
  /** The identity that key came from (made in ~/.config/fleet when the admin had none). */
  identity?: string
  dryRun: boolean
}

export async function initRepo(dir: string, opts: { dryRun: boolean; identity?: string; log: (l: string) => void }): Promise<InitResult> {
  const { dryRun } = opts
  const repo = resolve(dir)
  if (existsSync(join(repo, 'machines'))) throw new UserError(`${repo} is already a fleet repository (machines/ exists)`)
  const created = ['machines/', 'libvirt/', 'nix/flake.nix', 'nix/fleet/', '.gitignore', '.fleet/recipients'].map((p) => join(repo, p))
  if (dryRun) return { repo, created, recipients: [], dryRun }
  // The admin's key first: a missing or unreadable identity stops init before anything is made.
  const me = await adminRecipient(new Keyring(opts.identity), opts.log)
  await mkdir(join(repo, 'machines'), { recursive: true })
  await mkdir(join(repo, 'libvirt'), { recursive: true })
  await writeFile(join(repo, 'machines', '.gitkeep'), '')
  await writeFile(join(repo, 'libvirt', '.gitkeep'), '')
  await mkdir(join(repo, 'nix'), { recursive: true })
  if (existsSync(shippedNixDir())) await cp(shippedNixDir(), join(repo, 'nix', 'fleet'), { recursive: true })
  await writeFile(join(repo, 'nix', 'flake.nix'), FLAKE)
  if (!existsSync(join(repo, '.gitignore'))) await writeFile(join(repo, '.gitignore'), GITIGNORE)
  if (!existsSync(recipientsFile({ repo }))) await writeRecipients({ repo }, [me.recipient])
  return { repo, created, recipients: [me.recipient.line], identity: me.identity, dryRun }
}
