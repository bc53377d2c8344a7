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
  /** The exit code the single command would have ended with. */
  code?: number
}

/** A failure that belongs to one VM (bad input, a tool failed, undone) rather than a bug or a signal. */
function failure(e: unknown): { why: string; code: number } | undefined {
  if (e instanceof Interrupted || interrupted()) return undefined
  if (e instanceof RolledBack) {
    const cause = failure(e.cause)
    if (cause === undefined) return undefined
    const undo = [e.undo.removed.length ? `undone: removed ${e.undo.removed.join('; ')}` : '', e.undo.leftBehind.length ? `could NOT remove: ${e.undo.leftBehind.join('; ')}` : ''].filter(Boolean)
    return { why: [cause.why, ...undo].join('; '), code: cause.code }
  }
  if (e instanceof UserError || e instanceof ToolError) return { why: e.message, code: e.exitCode }
  return undefined
}

/**
 * Runs `fn` for each name, at most `concurrency` at once (default one after another); a VM's
 * failure is recorded and the others go on. A signal or a bug stops starting new ones, lets those
 * under way finish (or undo), then is rethrown. Results come back in the order of `names`.
 */
export async function eachVm<N extends string, T>(names: readonly N[], fn: (name: N) => Promise<T>, log?: (line: string) => void, concurrency = 1): Promise<VmOutcome<T>[]> {
  const out: VmOutcome<T>[] = new Array(names.length)
  let next = 0
  let stop: { e: unknown } | undefined
  const worker = async () => {
    while (!stop && next < names.length) {
      const i = next++
      const name = names[i]!
      try {
        out[i] = { name, outcome: 'ok', result: await fn(name) }
      } catch (e) {
        const f = failure(e)
        if (f === undefined) {
          stop ??= { e }
          return
        }
        log?.(`${name}: FAILED: ${f.why}`)
        out[i] = { name, outcome: 'failed', error: f.why, code: f.code }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, names.length)) }, worker))
  if (stop) throw stop.e
  return out
}

/** How many VMs a batch prepares at once: their disks are made by child processes, so a few overlap well. */
export const BATCH_CONCURRENCY = 4

export const anyFailed = (r: readonly { outcome: string }[]) => r.some((v) => v.outcome === 'failed')

/**
 * The exit status of a batch: 0 when every VM went well; when every VM failed with the same
 * status (e.g. 2, a bad flag refused for all of them), that status; otherwise 3, as upgrade.
 */
export function batchExitCode(r: readonly VmOutcome<unknown>[]): number {
  const failed = r.filter((v) => v.outcome === 'failed')
  if (!failed.length) return 0
  const codes = new Set(failed.map((v) => v.code ?? 3))
  return failed.length === r.length && codes.size === 1 ? [...codes][0]! : 3
}

/** A batch's per-VM results for --json: each VM's own result fields, its outcome and (failed) why. */
export interface BatchVm {
  name: string
  outcome: string
  error?: string
  [k: string]: unknown
}

export function batchVms<T extends object>(outcomes: VmOutcome<T>[], okWord: string | ((r: T) => string)): BatchVm[] {
  return outcomes.map((o) => o.outcome === 'ok'
    ? { ...o.result!, name: o.name, outcome: typeof okWord === 'string' ? okWord : okWord(o.result!) }
    : { name: o.name, outcome: 'failed', error: o.error })
}
