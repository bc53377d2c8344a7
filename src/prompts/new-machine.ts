// The interactive side of create-vm: asks what the flags did not give, re-asks on an answer the
// shared checks refuse, shows a summary and asks to confirm. Prompts go to stderr (stdout is results).
import { checkbox, confirm, input, select } from '@inquirer/prompts'
import { basename } from 'node:path'
import { UserError } from '../errors.js'
import { checkField, FIELDS, flagsFor, formatAnswer, parseAnswer, shellWords, type Field, type HostFacts, type NewMachineSpec } from '../machines/fields.js'
import type { AskNewMachine, PromptFacts } from '../services/new-machine-spec.js'
import { readKeyArgs } from '../services/keys.js'

/** A field asked at the terminal (every one with a prompt). */
type Question = Field & { prompt: string }
const QUESTIONS = (FIELDS as readonly Field[]).filter((f): f is Question => f.prompt !== undefined)

const io = { input: process.stdin, output: process.stderr }

/** True when a person can answer: stdin and stderr are terminals and no CI system is running us. */
export function canPrompt(env = process.env): boolean {
  const ci = env.CI !== undefined && !['', '0', 'false'].includes(env.CI.toLowerCase())
  return Boolean(process.stdin.isTTY && process.stderr.isTTY) && !ci
}

/** Inquirer's validate for a typed answer: the shared field check's message re-asks, true accepts. */
export function validator(q: Question, host: HostFacts): (text: string) => Promise<string | true> {
  return async (text) => (await checkField(q.key, parseAnswer(q, text) as never, host)) ?? true
}

async function askText(q: Question, def: string, facts: PromptFacts): Promise<NewMachineSpec[Question['key']]> {
  return parseAnswer(q, await input({ message: q.prompt, default: def || undefined, validate: validator(q, facts.host) }, io))
}

async function askChannel(q: Question, def: string, facts: PromptFacts): Promise<string> {
  if (facts.channels.length) {
    return select({ message: q.prompt, choices: facts.channels.map((c) => ({ value: c })), default: facts.channels.includes(def) ? def : undefined }, io)
  }
  io.output.write(`The image store (${facts.storeDir}) has no channel with an image for this architecture yet: type the one you will import (\`fleet image import FILE --channel CHANNEL\`) or build (\`fleet build\`).\n`)
  return String(await askText(q, def, facts))
}

async function askNetwork(q: Question, def: string, facts: PromptFacts): Promise<string> {
  const choices = [
    { value: 'user', description: 'user-mode networking, no root needed; SSH forwarded from a port on 127.0.0.1' },
    { value: 'none', description: 'no network interface' },
    ...(facts.host.networks ?? []).map((n) => ({ value: n, description: `libvirt network "${n}"` })),
  ]
  if (!facts.host.networks) io.output.write('(could not list the libvirt networks on this host: `virsh net-list` failed)\n')
  return select({ message: q.prompt, choices, default: choices.some((c) => c.value === def) ? def : undefined }, io)
}

async function askKeys(q: Question, facts: PromptFacts): Promise<string[]> {
  const who = q.key === 'adminKeys' ? 'admin' : 'user'
  const keys: string[] = []
  if (facts.publicKeys.length) {
    keys.push(...(await checkbox({
      message: `${q.prompt}: keys found in ~/.ssh (space toggles, enter accepts)`,
      choices: facts.publicKeys.map((k) => ({ value: k.key, name: `${basename(k.file)}  ${k.key.slice(0, 50)}…`, checked: who === 'admin' })),
      validate: async (chosen) => (await checkField(q.key, chosen.map((c) => c.value), facts.host)) ?? true,
    }, io)))
  }
  for (;;) {
    const text = await input({
      message: `Paste ${keys.length ? 'another' : who === 'admin' ? 'an' : 'a'} ${who} key, or a .pub file path (empty when done)`,
      validate: async (t) => (t.trim() === '' ? true : ((await checkField(q.key, await readKeyArgs([t.trim()]), facts.host)) ?? true)),
    }, io)
    if (!text.trim()) return [...new Set(keys)]
    keys.push(...(await readKeyArgs([text.trim()])))
  }
}

function summary(name: string, spec: NewMachineSpec): string {
  const rows: [string, string][] = QUESTIONS.map((q) => {
    const v = spec[q.key]
    const shown = q.kind === 'keys' && Array.isArray(v) ? (v.length ? `${v.length}: ${v.map((k) => k.split(/\s+/)[2] ?? k.slice(0, 24)).join(', ')}` : 'none') : formatAnswer(q, v) || 'none'
    return [q.flag, shown]
  })
  rows.push(['arch', spec.arch])
  return [`New machine ${name}:`, ...rows.map(([k, v]) => `  ${k.padEnd(10)} ${v}`)].join('\n') + '\n'
}

async function ask(name: string, given: Partial<NewMachineSpec>, defaults: NewMachineSpec, facts: PromptFacts): Promise<NewMachineSpec> {
  const spec: NewMachineSpec = { ...defaults }
  Object.assign(spec, Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)))
  io.output.write(`machines/${name} does not exist yet: a few questions (each one is also a flag; see \`fleet create-vm --help\`).\n`)
  for (const q of QUESTIONS) {
    if (given[q.key] !== undefined) continue
    const def = formatAnswer(q, defaults[q.key])
    const answer =
      q.kind === 'channel' ? await askChannel(q, def, facts)
        : q.kind === 'network' ? await askNetwork(q, def, facts)
          : q.kind === 'keys' ? await askKeys(q, facts)
            : await askText(q, def, facts)
    Object.assign(spec, { [q.key]: answer })
  }
  io.output.write(summary(name, spec))
  io.output.write(`The same without questions: fleet create-vm ${shellWords([name, ...flagsFor(spec, defaults)])}\n`)
  if (!(await confirm({ message: `Create ${name} with these settings?`, default: true }, io))) {
    throw new UserError(`machine ${name}: not created (answered no at the summary); nothing was written`, 'Run the command again, or pass the settings as flags.')
  }
  return spec
}

/** The prompts; Ctrl-C becomes a clean "cancelled" with nothing written. */
export const askNewMachine: AskNewMachine = async (name, given, defaults, facts) => {
  try {
    return await ask(name, given, defaults, facts)
  } catch (e) {
    if ((e as Error).name === 'ExitPromptError') throw new UserError(`machine ${name}: cancelled at the prompts; nothing was written`)
    throw e
  }
}
