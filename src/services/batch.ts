// Several VMs in one process: each VM's operation runs on its own (its own lock, intent record
// and undo, exactly as the single command), one VM's failure is that VM's outcome and the others
// go on; Ctrl-C / SIGTERM stops the batch after undoing the VM in progress. Commands exit 3 when
// any VM failed, as upgrade does.
import { ToolError, UserError } from '../errors.js'
import { Interrupted, interrupted } from '../util/interrupt.js'
import { RolledBack } from '../util/undo.js'

export interface VmOutcome<T> {
  name: string
  outcome: 'ok' | 'failed'
  result?: T
  /** Why it failed; what the failed operation undid is part of the message. */
  error?: string
}

/** A failure that belongs to one VM (bad input, a tool failed, undone) rather than a bug or a signal. */
function vmFailure(e: unknown): string | undefined {
  if (e instanceof Interrupted || interrupted()) return undefined
  if (e instanceof RolledBack) {
    const cause = vmFailure(e.cause)
    if (cause === undefined) return undefined
    const undo = [e.undo.removed.length ? `undone: removed ${e.undo.removed.join('; ')}` : '', e.undo.leftBehind.length ? `could NOT remove: ${e.undo.leftBehind.join('; ')}` : ''].filter(Boolean)
    return [cause, ...undo].join('; ')
  }
  if (e instanceof UserError || e instanceof ToolError) return e.message
  return undefined
}

/** Runs `fn` for each name in order; a VM's failure is recorded and the next VM goes on. */
export async function eachVm<N extends string, T>(names: readonly N[], fn: (name: N) => Promise<T>, log?: (line: string) => void): Promise<VmOutcome<T>[]> {
  const out: VmOutcome<T>[] = []
  for (const name of names) {
    try {
      out.push({ name, outcome: 'ok', result: await fn(name) })
    } catch (e) {
      const why = vmFailure(e)
      if (why === undefined) throw e
      log?.(`${name}: FAILED: ${why}`)
      out.push({ name, outcome: 'failed', error: why })
    }
  }
  return out
}

export const anyFailed = (r: readonly { outcome: string }[]) => r.some((v) => v.outcome === 'failed')
