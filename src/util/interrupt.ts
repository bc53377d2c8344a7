// Ctrl-C and SIGTERM during an operation: the running child is stopped (its step then fails),
// a step with no child finishes, and the operation's undo runs before fleet exits 130 / 143.
// A second signal says what is still being undone instead of killing fleet half way.

/** Exit status for an operation stopped by a signal (128 + signal number). */
export const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 }

export class Interrupted extends Error {
  readonly exitCode: number
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`)
    this.name = 'Interrupted'
    this.exitCode = SIGNAL_EXIT[signal] ?? 130
  }
}

let received: NodeJS.Signals | undefined
let controller = new AbortController()
let undoing = false
let installed = false
let log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)
let currentStep = ''
let leftToUndo: () => string[] = () => []

let active = 0

function onSignal(sig: NodeJS.Signals): void {
  if (!active && !received) {
    // No operation is running (before the first or after the last): the default, exit now.
    process.exit(SIGNAL_EXIT[sig] ?? 130)
  }
  if (!received) {
    received = sig
    controller.abort(new Interrupted(sig))
    log(`Interrupted (${sig}): stopping after the current step (${currentStep || 'starting'}) and undoing what this run made. Press Ctrl-C again to see what is left.`)
    return
  }
  const left = leftToUndo()
  log(`Still working: ${undoing ? `undoing ${left.length ? left.join('; ') : 'the last step'}` : `finishing step ${currentStep}`}. fleet exits when that is done.`)
}

/**
 * Takes over SIGINT/SIGTERM for the rest of the process (mutating commands call this first).
 * The handlers stay installed: a default handler (execa's signal-exit among them) would
 * otherwise re-raise the signal and kill fleet before its undo ran.
 */
export function guardSignals(logger?: (line: string) => void): () => void {
  if (logger) log = logger
  active++
  let left = false
  const leave = () => {
    if (!left) active--
    left = true
  }
  if (installed) return leave
  installed = true
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return leave
}

export function interrupted(): NodeJS.Signals | undefined {
  return received
}

export function interruptedError(): Interrupted {
  return new Interrupted(received ?? 'SIGINT')
}

/** Cancels the children of the current step on a signal; undo steps run without one. */
export function childCancelSignal(): AbortSignal | undefined {
  return undoing ? undefined : controller.signal
}

/** Called when the undo starts: its children must run to the end. */
export function beginUndo(describeLeft: () => string[]): void {
  undoing = true
  leftToUndo = describeLeft
}

export function endUndo(): void {
  undoing = false
  leftToUndo = () => []
}

/**
 * A step boundary: throws if a signal came in, and is where the fault-injection tests kill
 * fleet (FLEET_TEST_KILL_AT=STEP kills with SIGKILL, FLEET_TEST_SIGNAL_AT=STEP:SIG sends SIG,
 * FLEET_TEST_PAUSE_AT=STEP:MS holds the step for a race).
 */
export function step(name: string): void {
  currentStep = name
  const kill = process.env.FLEET_TEST_KILL_AT
  if (kill && kill === name) process.kill(process.pid, 'SIGKILL')
  const pause = process.env.FLEET_TEST_PAUSE_AT
  if (pause) {
    // Holds the step (and its locks) still so a test can race another command against it.
    const at = pause.slice(0, pause.lastIndexOf(':'))
    const ms = pause.slice(pause.lastIndexOf(':') + 1)
    if (at === name) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(ms) || 1000)
  }
  const sig = process.env.FLEET_TEST_SIGNAL_AT
  if (sig) {
    const at = sig.slice(0, sig.lastIndexOf(':'))
    if (at === name) onSignal(sig.slice(sig.lastIndexOf(':') + 1) as NodeJS.Signals)
  }
  if (received) throw new Interrupted(received)
}

/** Test-only: forget a received signal (unit tests run many operations in one process). */
export function resetInterruptForTests(): void {
  received = undefined
  controller = new AbortController()
  undoing = false
}
