// The base of every command: --json, --repo, --state-dir, error rendering with exit codes,
// progress on stderr, and the libvirt connection closed at the end.
import { makeLog, progressMode, type Log } from './util/progress.js'
import { Command } from '@oclif/core/command'
import * as Flags from '@oclif/core/flags'
import type * as Interfaces from '@oclif/core/interfaces'
import { disconnect } from './adapters/libvirt.js'
import { assertNoHostCmd } from './adapters/exec.js'
import { ExitCode, ToolError, UserError } from './errors.js'
import { resolvePaths, type Paths } from './repo.js'
import { makeContext, type FleetContext } from './services/context.js'
import { RolledBack } from './util/undo.js'
import { interrupted, Interrupted, SIGNAL_EXIT } from './util/interrupt.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    repo: Flags.string({ description: 'Fleet repository (default: nearest folder with machines/, or FLEET_REPO)', helpGroup: 'GLOBAL' }),
    'state-dir': Flags.string({ description: 'Where disk images live (default: FLEET_STATE_DIR, /var/lib/fleet as root, else ~/.local/share/fleet)', helpGroup: 'GLOBAL' }),
    connect: Flags.string({ char: 'c', description: 'libvirt connection URI, as virsh -c (default: LIBVIRT_DEFAULT_URI, else qemu:///system)', helpGroup: 'GLOBAL' }),
  }

  protected flags!: BaseFlags<T>
  protected args!: Interfaces.InferredArgs<T['args']>
  /** Every argument given, in order: more than `args` names for a command with `strict = false`. */
  protected argList!: string[]

  override async init(): Promise<void> {
    await super.init()
    const { flags, args, argv } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    // HOST_CMD was removed (see adapters/exec.ts): refuse it before any command reads or changes anything.
    assertNoHostCmd()
    // --connect wins over the environment, as virsh -c does; set where every adapter (and virsh) reads it.
    if (flags.connect) process.env.LIBVIRT_URI = flags.connect
    this.flags = flags as BaseFlags<T>
    this.args = args as Interfaces.InferredArgs<T['args']>
    this.argList = argv as string[]
  }

  private log_?: Log
  /** Progress for people: stderr (a spinner on a terminal, plain lines otherwise), silent under --json. */
  protected get progress(): Log {
    return (this.log_ ??= makeLog(progressMode(this.jsonEnabled())))
  }

  protected paths(): Paths {
    return resolvePaths({ repo: this.flags.repo, stateDir: this.flags['state-dir'] })
  }

  protected context(opts: { virtType?: string; dryRun?: boolean; adopt?: boolean; identity?: string } = {}): FleetContext {
    return makeContext(this.paths(), { ...opts, log: this.progress })
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    await disconnect()
    let e: unknown = err
    const lines: string[] = []
    if (err instanceof RolledBack) {
      e = err.cause
      if (err.undo.removed.length) lines.push(`Undone after the failure: removed ${err.undo.removed.join('; ')}`)
      if (err.undo.leftBehind.length) lines.push(`Could NOT remove: ${err.undo.leftBehind.join('; ')}`)
    }
    // Stopped by Ctrl-C / SIGTERM (or a child that died of it): say what was undone, exit 130 / 143.
    const sig = interrupted()
    if (e instanceof Interrupted || sig) {
      const code = e instanceof Interrupted ? e.exitCode : (SIGNAL_EXIT[sig!] ?? 130)
      const out = [`Interrupted by ${e instanceof Interrupted ? e.signal : sig}${lines.length ? '' : '; nothing was left half done'}.`, ...lines]
      if (this.jsonEnabled()) process.stdout.write(JSON.stringify({ error: { type: 'Interrupted', code, message: out[0], cleanup: lines } }, null, 2) + '\n')
      else process.stderr.write(out.join('\n') + '\n')
      this.exit(code)
    }
    if (e instanceof UserError || e instanceof ToolError) {
      const hint = e.hint
      const out = this.jsonEnabled()
        ? JSON.stringify({ error: { type: e.name, code: e.exitCode, message: e.message, hint, cleanup: lines, ...(e instanceof ToolError ? { tool: e.tool, args: e.args, exitCode: e.code } : {}) } }, null, 2)
        : [`Error: ${e.message}`, ...(e instanceof ToolError ? [`  command: ${e.tool} ${e.args.join(' ')}`] : []), ...lines, ...(hint ? [`Try this: ${hint}`] : [])].join('\n')
      if (this.jsonEnabled()) process.stdout.write(out + '\n')
      else process.stderr.write(out + '\n')
      this.exit(e.exitCode)
    }
    if (lines.length) process.stderr.write(lines.join('\n') + '\n')
    // A bad flag or argument under --json: one short JSON error and exit 2, not oclif's whole
    // error object (which carries its configuration: over 100 KB).
    const parseError = (err as { parse?: unknown }).parse !== undefined
    if (parseError && this.argv.includes('--json')) {
      process.stdout.write(JSON.stringify({ error: { type: 'UsageError', code: ExitCode.user, message: err.message.replace(/\s*\n\s*/g, ' ').trim(), hint: `fleet ${(this.id ?? '').replaceAll(':', ' ')} --help`.trim() } }, null, 2) + '\n')
      this.exit(ExitCode.user)
    }
    // oclif's own parse errors and exits keep their behaviour; anything else is a bug.
    if (err.exitCode === undefined && !(err as { oclif?: unknown }).oclif) err.exitCode = ExitCode.bug
    return super.catch(e instanceof Error ? Object.assign(e, { exitCode: (e as { exitCode?: number }).exitCode ?? err.exitCode }) : err)
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    await disconnect()
    return super.finally(err)
  }
}
