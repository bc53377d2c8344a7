// Undo guards: each step that creates something registers how to remove it. On failure or
// Ctrl-C the steps run in reverse and the caller learns what was removed.

export interface UndoStep {
  what: string
  undo: () => Promise<void>
}

export class Undo {
  private steps: UndoStep[] = []
  readonly removed: string[] = []
  readonly leftBehind: string[] = []

  add(what: string, undo: () => Promise<void>): void {
    this.steps.push({ what, undo })
  }

  /** Runs every registered undo, newest first; never throws. */
  async rollback(): Promise<void> {
    for (const step of this.steps.reverse()) {
      try {
        await step.undo()
        this.removed.push(step.what)
      } catch (e) {
        this.leftBehind.push(`${step.what} (${(e as Error).message})`)
      }
    }
    this.steps = []
  }

  /** Forgets the steps: the work is complete. */
  commit(): void {
    this.steps = []
  }
}

/** Error raised after a rollback; carries what was removed and what could not be. */
export class RolledBack extends Error {
  constructor(override readonly cause: unknown, readonly undo: Undo) {
    super((cause as Error)?.message ?? String(cause))
    this.name = 'RolledBack'
  }
}

/**
 * Runs `work` with an Undo. On error or SIGINT/SIGTERM the undo runs and the error is rethrown
 * wrapped in RolledBack, so the command can report what it removed.
 */
export async function withUndo<T>(work: (undo: Undo) => Promise<T>): Promise<T> {
  const undo = new Undo()
  let interrupted: NodeJS.Signals | undefined
  let rejectInterrupt: (e: Error) => void = () => {}
  const interruptedP = new Promise<never>((_, reject) => {
    rejectInterrupt = reject
  })
  interruptedP.catch(() => {})
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = sig
    rejectInterrupt(new Error(`interrupted by ${sig}`))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const result = await Promise.race([work(undo), interruptedP])
    undo.commit()
    return result
  } catch (e) {
    await undo.rollback()
    throw new RolledBack(e, undo)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (interrupted) process.exitCode = 130
  }
}
