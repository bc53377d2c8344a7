// Commands that take one or more machine names and do one thing to each (start-vm, stop-vm).
import * as Args from '@oclif/core/args'
import type { Command } from '@oclif/core/command'
import { BaseCommand } from './base-command.js'
import { vmName, vmNames, type VmName } from './name.js'
import { anyFailed, batchExitCode, batchVms, eachVm, type BatchVm } from './services/batch.js'

// The names are this.argList (parsed once, in BaseCommand): this.parse(Subclass) would lose the
// inherited args and strict (oclif spreads the class, which copies only its own statics).
export abstract class VmBatchCommand<T extends typeof Command> extends BaseCommand<T> {
  static override strict = false
  static override args = { name: Args.string({ description: 'Machine names (folders in machines/)', required: true }) }

  /**
   * One name: `act` on it, its line, its result. Several: each on its own (its own lock), one
   * line per VM; one that fails is reported, the others go on, and the exit status is 3.
   */
  protected async forEachVm<R extends object>(act: (name: VmName) => Promise<R>, line: (r: R) => string, okWord: (r: R) => string): Promise<R | { vms: BatchVm[] }> {
    const argv = this.argList
    if (argv.length === 1) {
      const r = await act(vmName(argv[0]!))
      if (!this.jsonEnabled()) this.log(line(r))
      return r
    }
    const out = await eachVm(vmNames(argv), act, this.progress)
    if (!this.jsonEnabled()) for (const o of out) this.log(o.result ? line(o.result) : `${o.name}: FAILED: ${o.error}`)
    if (anyFailed(out)) process.exitCode = batchExitCode(out)
    return { vms: batchVms(out, okWord) }
  }
}
