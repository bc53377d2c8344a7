// Typed errors with documented exit codes; the base command maps them to output and exit status.

/** Exit codes (documented in README): 0 ok, 1 unexpected bug, 2 user-fixable, 3 external tool failed (or some VMs of a batch failed), 4 busy/locked, 5 `plan --detailed-exitcode` found changes. */
export const ExitCode = { ok: 0, bug: 1, user: 2, tool: 3, busy: 4, changes: 5 } as const

/** Something the user can fix: bad input, missing file, name already taken. */
export class UserError extends Error {
  readonly exitCode: number = ExitCode.user
  constructor(message: string, readonly hint?: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'UserError'
  }
}

/** Another fleet process holds the lock on a VM or the store. */
export class BusyError extends UserError {
  override readonly exitCode: number = ExitCode.busy
  constructor(message: string, hint?: string) {
    super(message, hint)
    this.name = 'BusyError'
  }
}

/** An external program (qemu-img, guestfish, virsh, libvirt) failed. */
export class ToolError extends Error {
  readonly exitCode: number = ExitCode.tool
  constructor(
    readonly tool: string,
    readonly args: readonly string[],
    readonly code: number | undefined,
    readonly stderr: string,
    readonly hint?: string,
  ) {
    const detail = stderr.trim().split('\n').slice(-6).join('\n')
    super(`${tool} failed${code === undefined ? '' : ` (exit ${code})`}: ${detail || 'no error output'}`)
    this.name = 'ToolError'
  }
}
