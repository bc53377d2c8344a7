// Where a new machine's settings come from: flags first, then the prompts (on a terminal),
// the defaults (--yes), or an error listing the flags to pass (no terminal: never wait for input).
import { totalmem } from 'node:os'
import * as libvirt from '../adapters/libvirt.js'
import { UserError } from '../errors.js'
import type { Arch } from '../machines/model.js'
import { defaultSpec, FIELDS, formatAnswer, specFromFlags as fromFlags, type Field, type HostFacts, type NewMachineSpec } from '../machines/fields.js'
import type { Paths } from '../repo.js'
import { parseChannelKey, readChannels } from '../store/images.js'
import { findPublicKeys, readKeyArgs, type FoundKey } from './keys.js'

/** What the prompts offer: the store's channels, the host's networks, the admin's public keys. */
export interface PromptFacts {
  host: HostFacts
  channels: string[]
  storeDir: string
  publicKeys: FoundKey[]
}

/** Asks for the fields missing from `given`, shows a summary, and returns the confirmed spec. */
export type AskNewMachine = (name: string, given: Partial<NewMachineSpec>, defaults: NewMachineSpec, facts: PromptFacts) => Promise<NewMachineSpec>

export interface NewMachineRequest {
  /** Values from flags; validated before anything is asked. */
  given: Partial<NewMachineSpec>
  /** --yes: defaults for anything not given, never ask. */
  yes: boolean
  /** Present only when a person is at a terminal. */
  ask?: AskNewMachine
}

export async function hostFacts(): Promise<HostFacts> {
  return { totalMemory: totalmem(), networks: await libvirt.listNetworkNames() }
}

/** The full spec for a new machine, or a UserError saying which flags are missing. */
export async function resolveNewMachineSpec(paths: Paths, name: string, req: NewMachineRequest, host: HostFacts): Promise<NewMachineSpec> {
  const defaults = defaultSpec()
  const missing = (FIELDS as readonly Field[]).filter((f) => f.prompt && req.given[f.key] === undefined)
  // A terminal and something left to ask: ask it (nothing given and nothing asked needs no summary).
  if (req.ask && !req.yes && missing.length) {
    const facts: PromptFacts = {
      host,
      channels: channelsFor(Object.keys(await readChannels(paths)), req.given.arch ?? defaults.arch),
      storeDir: paths.images,
      publicKeys: await findPublicKeys(),
    }
    return req.ask(name, req.given, defaults, facts)
  }
  const required = missing.filter((q) => q.required)
  if (!req.yes && required.length) {
    const list = required.map((q) => `--${q.flag} (default ${formatAnswer(q, defaults[q.key])})`).join(', ')
    throw new UserError(`machine ${name}: machines/${name} does not exist and there is no terminal to ask on; missing ${list}`,
      `Pass ${required.map((q) => `--${q.flag}`).join(' ')}, or add --yes to take the defaults for anything not given.`)
  }
  return { ...defaults, ...definedOnly(req.given) }
}

/** The channels that hold an image for `arch` (channels.json keys are CHANNEL or CHANNEL@ARCH). */
function channelsFor(keys: string[], arch: Arch): string[] {
  return keys.map(parseChannelKey).filter((k) => k.arch === arch).map((k) => k.channel).sort()
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** The fields create-vm's flags give (see machines/fields.ts); key files are read here. */
export function specFromFlags(flags: Readonly<Record<string, unknown>>): Promise<Partial<NewMachineSpec>> {
  return fromFlags(flags, readKeyArgs)
}
