// Where a new machine's settings come from: flags first, then the prompts (on a terminal),
// the defaults (--yes), or an error listing the flags to pass (no terminal: never wait for input).
import { totalmem } from 'node:os'
import * as libvirt from '../adapters/libvirt.js'
import { UserError } from '../errors.js'
import type { Arch } from '../machines/model.js'
import { defaultSpec, type NewMachineSpec } from '../machines/new-machine.js'
import type { HostFacts } from '../machines/spec-checks.js'
import { QUESTIONS, formatAnswer, parseAnswer } from '../prompts/questions.js'
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
  const missing = QUESTIONS.filter((q) => req.given[q.key] === undefined)
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

/** create-vm's setting flags, as oclif parsed them. */
export interface SpecFlags {
  memory?: string
  vcpus?: string
  'var-size'?: string
  base?: string
  network?: string
  arch?: string
  dns?: string
  host?: string[]
  'tcp-ports'?: string
  'udp-ports'?: string
  'admin-key'?: string[]
  'user-key'?: string[]
}

/** The fields the flags give (absent flags stay absent, so prompts or defaults fill them). */
export async function specFromFlags(f: SpecFlags): Promise<Partial<NewMachineSpec>> {
  const given: Partial<NewMachineSpec> = {}
  for (const q of QUESTIONS) {
    const value = f[q.flag as keyof SpecFlags]
    if (value === undefined) continue
    const texts = Array.isArray(value) ? value : [value]
    const parsed = q.kind === 'keys' ? await readKeyArgs(texts) : Array.isArray(value) ? texts : parseAnswer(q, value)
    Object.assign(given, { [q.key]: parsed })
  }
  if (f.arch !== undefined) given.arch = f.arch as NewMachineSpec['arch'] // checked with the rest
  return given
}
