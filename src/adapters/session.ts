// A long-running tool driven over stdin one line at a time (guestfish), its stdout read line by
// line. It belongs beside exec.ts (same HOST_CMD/SUDO prefix); stdin stays a pipe held only by
// this process, so when fleet ends or is killed the tool reads EOF and ends too. It runs in its
// own process group: a terminal's Ctrl-C reaches fleet, which stops between two commands, not
// the tool in the middle of one.
import { execa } from 'execa'
import { createInterface } from 'node:readline'
import { commandLine } from './exec.js'

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

export function startSession(cmd: string[], args: string[], opts: { env?: Record<string, string>; privileged?: boolean } = {}): Session {
  const [file, ...rest] = commandLine([...cmd, ...args], opts.privileged)
  if (!file) throw new Error('startSession: empty command')
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
