// Intent records: before an operation changes anything it writes (and fsyncs) what it is
// about to do to <state>/ops/<target>.json, and moves the record's phase forward as it goes.
// The record is removed only when the operation is complete or fully undone, so a record on
// disk always means "interrupted": the next fleet command holding the same lock finishes or
// rolls back that operation (src/ops/recover.ts) before it does anything else.
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { UserError } from '../errors.js'
import type { VmName } from '../name.js'
import type { Paths } from '../repo.js'
import { unlinkDurable, writeFileAtomic } from '../util/fsx.js'

export type OpKind = 'create' | 'upgrade' | 'rollback' | 'import' | 'gc' | 'destroy'

export interface Intent<D = Record<string, unknown>> {
  op: OpKind
  /** vm-NAME or store. */
  target: string
  phase: string
  pid: number
  started: string
  data: D
}

export function vmTarget(name: VmName): string {
  return `vm-${name}`
}
export const STORE_TARGET = 'store'

function intentFile(paths: Paths, target: string): string {
  return join(paths.ops, `${target}.json`)
}

export class IntentHandle<D> {
  constructor(private readonly paths: Paths, readonly intent: Intent<D>) {}

  get data(): D {
    return this.intent.data
  }

  /** Moves to `phase` (durably) with `patch` merged into the data. */
  async phase(phase: string, patch: Partial<D> = {}): Promise<void> {
    this.intent.phase = phase
    Object.assign(this.intent.data as object, patch)
    await writeIntent(this.paths, this.intent)
  }

  /** The operation is complete or fully undone. */
  async done(): Promise<void> {
    await unlinkDurable(intentFile(this.paths, this.intent.target))
  }
}

async function writeIntent(paths: Paths, intent: Intent<unknown>): Promise<void> {
  await writeFileAtomic(intentFile(paths, intent.target), JSON.stringify(intent, null, 2) + '\n', 0o600)
}

/** Writes the record before the first change. The caller holds the target's lock. */
export async function beginIntent<D>(paths: Paths, target: string, op: OpKind, phase: string, data: D): Promise<IntentHandle<D>> {
  const intent: Intent<D> = { op, target, phase, pid: process.pid, started: new Date().toISOString(), data }
  await writeIntent(paths, intent)
  return new IntentHandle(paths, intent)
}

const OPS: readonly string[] = ['create', 'upgrade', 'rollback', 'import', 'gc', 'destroy']

/** The interrupted operation on `target`, if any. A record fleet cannot read is exit 2, naming it. */
export async function readIntent<D = Record<string, unknown>>(paths: Paths, target: string): Promise<IntentHandle<D> | undefined> {
  const file = intentFile(paths, target)
  if (!existsSync(file)) return undefined
  let raw: unknown
  try {
    raw = JSON.parse(await readFile(file, 'utf8'))
  } catch (e) {
    throw new UserError(`intent record ${file} is not valid JSON (${(e as Error).message})`, `It records an interrupted operation on ${target}; inspect it, repair the state by hand, then remove it.`)
  }
  const r = raw as Partial<Intent<D>>
  if (!r || typeof r !== 'object' || typeof r.op !== 'string' || !OPS.includes(r.op) || r.target !== target || typeof r.phase !== 'string' || typeof r.data !== 'object' || r.data === null) {
    throw new UserError(`intent record ${file} is not a fleet intent record for ${target} (op, target, phase and data expected)`, 'Inspect it, repair the state by hand, then remove it.')
  }
  return new IntentHandle(paths, r as Intent<D>)
}

/** Targets with an interrupted operation. */
export async function listIntentTargets(paths: Paths): Promise<string[]> {
  if (!existsSync(paths.ops)) return []
  return (await readdir(paths.ops)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort()
}
