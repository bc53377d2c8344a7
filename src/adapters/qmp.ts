// QMP, QEMU's JSON monitor protocol, over a unix socket (a qemu-storage-daemon's --monitor):
// the greeting, qmp_capabilities, then one command at a time, events skipped.
import { connect, type Socket } from 'node:net'
import { ToolError } from '../errors.js'

/** An internal snapshot of a large, much-written disk updates many refcounts; still, never wait forever. */
const REPLY_MS = 300_000

type Reply = { return?: unknown; error?: { class: string; desc: string }; event?: string; QMP?: unknown }

export class QmpClient {
  private buffered = ''
  private readonly waiting: ((r: Reply | Error) => void)[] = []
  private queue: Promise<unknown> = Promise.resolve()
  private closedWith: Error | undefined

  private constructor(private readonly socket: Socket, private readonly path: string) {
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => {
      this.buffered += d
      for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, nl).trim()
        this.buffered = this.buffered.slice(nl + 1)
        if (!line) continue
        let r: Reply
        try {
          r = JSON.parse(line) as Reply
        } catch {
          continue
        }
        if (r.event === undefined) this.waiting.shift()?.(r)
      }
    })
    const end = (e?: Error) => {
      this.closedWith ??= e ?? new Error('the monitor closed its socket')
      for (const w of this.waiting.splice(0)) w(this.closedWith)
    }
    socket.on('error', end)
    socket.on('close', () => end())
  }

  /** Connects to the monitor at `path` and leaves capabilities negotiation mode. */
  static async open(path: string): Promise<QmpClient> {
    const socket = connect(path)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    }).catch((e: Error) => {
      throw new ToolError('qmp', [path], undefined, e.message)
    })
    const c = new QmpClient(socket, path)
    await c.reply() // the greeting
    await c.execute('qmp_capabilities')
    return c
  }

  /** The next reply; a daemon that does not answer within REPLY_MS is given up on (the socket closed). */
  private reply(): Promise<Reply> {
    return new Promise((resolve, reject) => {
      if (this.closedWith) return reject(this.closedWith)
      const timer = setTimeout(() => this.socket.destroy(new Error(`no reply within ${REPLY_MS / 1000}s`)), REPLY_MS)
      this.waiting.push((r) => {
        clearTimeout(timer)
        if (r instanceof Error) reject(r)
        else resolve(r)
      })
    })
  }

  /** Runs one command (after those sent before it); its `return`, or a ToolError with QEMU's words. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const run = async (): Promise<unknown> => {
      const answer = this.reply()
      this.socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n')
      const r = await answer.catch((e: Error) => {
        throw new ToolError('qmp', [command, this.path], undefined, e.message)
      })
      if (r.error) throw new ToolError('qmp', [command, JSON.stringify(args ?? {})], undefined, `${r.error.class}: ${r.error.desc}`)
      return r.return
    }
    const p = this.queue.then(run, run)
    this.queue = p.catch(() => undefined)
    return p
  }

  close(): void {
    this.socket.destroy()
  }
}
