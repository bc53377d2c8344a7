// Progress for people, on stderr only: a spinner (oclif's ux.action) on a terminal, plain lines
// otherwise (pipes, CI logs), nothing under --json. Services get a `Log`: a function for lines
// that may also carry `task`, which shows a step that can take more than a second while it runs.
import { ux } from '@oclif/core/ux'

export interface Task {
  /** A short state shown beside the title: "42%", "12 s". */
  status: (text: string) => void
  /** A line of a tool's own output (mmdebstrap, nix): the status on a terminal, a line otherwise. */
  output: (line: string) => void
}

export type Log = ((line: string) => void) & {
  task?: <T>(title: string, fn: (t: Task) => Promise<T>) => Promise<T>
}

const silentTask: Task = { status: () => {}, output: () => {} }

/** Runs `fn` as a visible step of `log` (a plain title line when the log has no task support). */
export async function task<T>(log: Log, title: string, fn: (t: Task) => Promise<T>): Promise<T> {
  if (log.task) return log.task(title, fn)
  log(title)
  return fn(silentTask)
}

export type ProgressMode = 'json' | 'spinner' | 'lines'

/** What the terminal allows: oclif picks its spinner only on a TTY stderr outside CI (and not TERM=dumb). */
export function progressMode(json: boolean): ProgressMode {
  if (json) return 'json'
  return ux.action.type === 'spinner' ? 'spinner' : 'lines'
}

const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`
// A tool line as a spinner status: printable, one line, short enough for the terminal.
const oneLine = (s: string) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/[^\x20-\x7e\u00a0-\uffff]/g, '').trim().slice(0, Math.max(20, (process.stderr.columns ?? 80) - 40))

export function makeLog(mode: ProgressMode, write: (s: string) => void = (s) => void process.stderr.write(s)): Log {
  if (mode === 'json') {
    const log: Log = () => {}
    log.task = (_title, fn) => fn(silentTask)
    return log
  }
  const log: Log = (line) => write(`${line}\n`)
  let depth = 0
  log.task = async (title, fn) => {
    const t0 = performance.now()
    // One spinner at a time: a step inside a step shows as the outer one's status.
    const nested = depth > 0
    depth++
    const spin = mode === 'spinner'
    const t: Task = spin
      ? { status: (s) => void (ux.action.status = nested ? `${title}: ${s}` : s), output: (l) => { const s = oneLine(l); if (s) ux.action.status = s } }
      : { status: () => {}, output: (l) => write(`${l.replace(/\r/g, '')}\n`) }
    if (spin) {
      if (nested) ux.action.status = title
      else ux.action.start(title)
    } else write(`${title}…\n`)
    try {
      const r = await fn(t)
      if (spin && !nested) ux.action.stop(`done (${seconds(t0)})`)
      if (!spin) write(`${title}: done (${seconds(t0)})\n`)
      return r
    } catch (e) {
      if (spin && !nested) ux.action.stop('failed')
      if (!spin) write(`${title}: failed after ${seconds(t0)}\n`)
      throw e
    } finally {
      depth--
    }
  }
  return log
}

/** Splits a tool's output stream into lines and progress updates (qemu-img -p ends them with \r). */
export function lineSplitter(onLine: (line: string) => void): (chunk: string) => void {
  let rest = ''
  return (chunk) => {
    const parts = (rest + chunk).split(/\r\n|\r|\n/)
    rest = parts.pop() ?? ''
    for (const p of parts) if (p.trim()) onLine(p)
  }
}
