// Undo guards: each step that creates something registers how to remove it. On failure or
// Ctrl-C the steps run in reverse and the caller learns what was removed.
import { beginUndo, endUndo, guardSignals } from './interrupt.js'

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

  /** What is still to be undone (for a second Ctrl-C). */
  pending(): string[] {
    return this.steps.map((s) => s.what).reverse()
  }

  /** Runs every registered undo, newest first; never throws. */
  async rollback(): Promise<void> {
    while (this.steps.length) {
      const step = this.steps[this.steps.length - 1]!
      try {
        await step.undo()
        this.removed.push(step.what)
      } catch (e) {
        this.leftBehind.push(`${step.what} (${(e as Error).message})`)
      }
      this.steps.pop()
    }
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
 * Runs `work` with an Undo. On an error, or Ctrl-C/SIGTERM (the running child is stopped, a
 * step without one ends and the next step() throws), the undo runs to the end and the error is
 * rethrown wrapped in RolledBack, so the command can report what it removed and exit 130/143.
 */
export async function withUndo<T>(work: (undo: Undo) => Promise<T>): Promise<T> {
  const leave = guardSignals()
  const undo = new Undo()
  try {
    const result = await work(undo)
    undo.commit()
    return result
  } catch (e) {
    beginUndo(() => undo.pending())
    try {
      await undo.rollback()
    } finally {
      endUndo()
    }
    throw new RolledBack(e, undo)
  } finally {
    leave()
  }
}
