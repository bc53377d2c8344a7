// The only module that starts processes. Every host command goes through here, as an argument
// array, prefixed (for privileged tools) with SUDO.
import type { Options } from 'execa'
import { constants } from 'node:fs'
import { access, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { ToolError, UserError } from '../errors.js'
import { words, type Env } from '../util/env.js'
import { childCancelSignal, interruptedError } from '../util/interrupt.js'

// execa (and its dependencies) load on the first tool run: commands that run no tool, and
// `fleet --help`, start faster without them.
let execaModule: Promise<typeof import('execa')> | undefined
const loadExeca = async () => (await (execaModule ??= import('execa'))).execa

export interface RunOptions {
  env?: Record<string, string>
  input?: string | Buffer
  /** Stream the tool's stderr to ours (long builds). */
  inheritStderr?: boolean
  /** The tool's stderr / stdout as it comes (progress of long builds and copies); still collected. */
  onStderr?: (chunk: string) => void
  onStdout?: (chunk: string) => void
  /** Prefix with SUDO (tools that touch root-owned files). */
  privileged?: boolean
  timeoutMs?: number
  cwd?: string
  /** An open file descriptor the child gets as its fd 3 (flock on a held lock file). */
  fd3?: number
  /** Not cancelled by Ctrl-C (undo steps run after an interrupt). */
  uncancellable?: boolean
}

export interface RunResult {
  stdout: string
  stderr: string
  exitCode: number
}

/**
 * HOST_CMD (a prefix such as `ssh host` for every command) was removed: a remote shell re-splits
 * the arguments, and temp files and locks would stay on this machine. Set, it is an error rather
 * than being ignored, so no one runs against the wrong host.
 */
export function assertNoHostCmd(env: Env = process.env): void {
  if (env.HOST_CMD) {
    throw new UserError(`HOST_CMD is set ("${env.HOST_CMD}"), but fleet no longer supports running host commands through a prefix`,
      'Unset HOST_CMD and run fleet on the libvirt host itself (e.g. `ssh host fleet ...`).')
  }
}

/** The argv actually executed for `cmd args`, honouring SUDO. */
export function commandLine(cmd: string[], privileged = false, env: Env = process.env): string[] {
  assertNoHostCmd(env)
  return [...(privileged ? words(env.SUDO) : []), ...cmd]
}

/** Runs a tool; resolves with its output or rejects with a ToolError. */
export async function run(cmd: string[], args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await tryRun(cmd, args, opts)
  if (r.exitCode !== 0) throw new ToolError(cmd.join(' '), args, r.exitCode, r.stderr || r.stdout)
  return r
}

/** Runs a tool and returns its exit code instead of throwing (for probes and "not found" answers). */
export async function tryRun(cmd: string[], args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const argv = commandLine([...cmd, ...args], opts.privileged)
  const [file, ...rest] = argv
  if (!file) throw new ToolError('(empty command)', args, undefined, 'no command given')
  const stdin = opts.input === undefined ? 'ignore' : 'pipe'
  const stderr = opts.inheritStderr ? 'inherit' : 'pipe'
  const options: Options = {
    reject: false,
    env: opts.env,
    input: opts.input,
    cwd: opts.cwd,
    timeout: opts.timeoutMs,
    // fd 3 is how a child gets a held lock file (flock); node opens every other file close-on-exec.
    ...(opts.fd3 === undefined ? { stdin, stderr } : { stdio: [stdin, 'pipe', stderr, opts.fd3] as unknown as Options['stdio'] }),
    encoding: 'utf8',
    stripFinalNewline: false,
    // Ctrl-C / SIGTERM stop the running child; the step then fails and its undo runs.
    cancelSignal: opts.uncancellable ? undefined : childCancelSignal(),
  }
  const execa = await loadExeca()
  const child = execa(file, rest, options)
  if (opts.onStderr) child.stderr?.on('data', (d: Buffer | string) => opts.onStderr!(String(d)))
  if (opts.onStdout) child.stdout?.on('data', (d: Buffer | string) => opts.onStdout!(String(d)))
  const r = await child
  if (r.isCanceled) throw interruptedError()
  if (r.failed && r.exitCode === undefined) {
    // Not started at all (ENOENT) or killed by timeout.
    const why = r.timedOut ? `timed out after ${opts.timeoutMs} ms` : (r.cause instanceof Error ? r.cause.message : (r.shortMessage ?? 'failed'))
    throw new ToolError(file, rest, undefined, why, r.timedOut ? undefined : `Is ${file} installed? Run \`fleet doctor\`.`)
  }
  return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? 1 }
}

/** Runs an interactive tool attached to our terminal (virsh console, ssh). Returns its exit code. */
export async function runInteractive(cmd: string[], args: string[]): Promise<number> {
  const [file, ...rest] = commandLine([...cmd, ...args])
  if (!file) return 1
  const execa = await loadExeca()
  const r = await execa(file, rest, { stdio: 'inherit', reject: false })
  return r.exitCode ?? 1
}

/** The executable `name` resolves to through PATH (as `command -v` finds it, without starting a shell), or undefined. */
export async function which(name: string, env: Env = process.env): Promise<string | undefined> {
  assertNoHostCmd(env) // HOST_CMD set: say so instead of "not installed"
  if (!name) return undefined
  const candidates = name.includes('/') ? [name] : (env.PATH ?? '').split(':').map((d) => join(d || '.', name))
  for (const file of candidates) {
    try {
      if (!(await stat(file)).isFile()) continue
      await access(file, constants.X_OK)
      return file
    } catch {
      // not there, or not executable: the next PATH entry
    }
  }
  return undefined
}

// A long-running tool driven over stdin one line at a time (guestfish), its stdout read line by
// line. stdin stays a pipe held only by this process, so when fleet ends or is killed the tool
// reads EOF and ends too. It runs in its own process group: a terminal's Ctrl-C reaches fleet,
// which stops between two commands, not the tool in the middle of one.
export interface Session {
  /** Writes text (whole lines) to the tool's stdin. */
  send(text: string): void
  /** The next line of stdout, or undefined once the tool has closed it (exited). */
  nextLine(): Promise<string | undefined>
  /** Everything the tool wrote to stderr so far. */
  stderr(): string
  /** Ends stdin and waits for the tool to exit: its exit code, or why it could not run. */
  end(): Promise<{ exitCode?: number; error?: string }>
}

export async function startSession(cmd: string[], args: string[], opts: { env?: Record<string, string>; privileged?: boolean } = {}): Promise<Session> {
  const [file, ...rest] = commandLine([...cmd, ...args], opts.privileged)
  if (!file) throw new Error('startSession: empty command')
  const execa = await loadExeca()
  const child = execa(file, rest, { env: opts.env, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', reject: false, buffer: false, encoding: 'utf8', detached: true })
  let errText = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (d: string) => (errText += d))
  // Writing after the tool died must not crash fleet; the caller learns it from nextLine().
  child.stdin?.on('error', () => {})
  const lines: string[] = []
  const waiting: ((l: string | undefined) => void)[] = []
  let closed = false
  const rl = createInterface({ input: child.stdout! })
  rl.on('line', (l) => (waiting.length ? waiting.shift()!(l) : lines.push(l)))
  rl.on('close', () => {
    closed = true
    for (const w of waiting.splice(0)) w(undefined)
  })
  const done = child.then((r) => ({ exitCode: r.exitCode, error: r.exitCode === undefined ? (r.cause instanceof Error ? r.cause.message : r.shortMessage) : undefined }))
  return {
    send: (text) => void child.stdin?.write(text),
    nextLine: () => (lines.length ? Promise.resolve(lines.shift()) : closed ? Promise.resolve(undefined) : new Promise((res) => waiting.push(res))),
    stderr: () => errText,
    end: async () => {
      child.stdin?.end()
      return done
    },
  }
}
