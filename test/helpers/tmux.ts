// A real pseudo-terminal for prompt tests: the command runs in a private tmux server; the test
// reads the screen and types keys as a person would.
import { execa, execaSync } from 'execa'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'

export interface Terminal {
  screen: () => Promise<string>
  /** Waits until the screen matches; fails with the screen in the message. */
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<string>
  /** Types text literally (no key names). */
  type: (text: string) => Promise<void>
  /** Sends tmux key names: Enter, Up, Down, Space, C-u, C-c. */
  keys: (...names: string[]) => Promise<void>
  /** Moves a select/checkbox cursor (❯) to the line containing `label`. */
  moveTo: (label: string) => Promise<void>
  /** Resolves with the exit status once the command has ended. */
  exited: (timeoutMs?: number) => Promise<number>
  close: () => Promise<void>
}

function probe(): string | undefined {
  try {
    return execaSync('tmux', ['-V'], { reject: false }).exitCode === 0 ? undefined : 'tmux -V failed'
  } catch (e) {
    return (e as Error).message
  }
}

/** Why prompt tests cannot run here (no tmux), or undefined. Under CI a missing tmux fails the run. */
export const tmuxMissing = probe()
if (tmuxMissing && process.env.CI) throw new Error(`CI needs tmux (apt-get install tmux) for the prompt tests: ${tmuxMissing}`)
if (tmuxMissing) console.log(`skipped: no tmux (${tmuxMissing})`)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function terminal(dir: string, env: Record<string, string>, argv: string[]): Promise<Terminal> {
  const sock = join(dir, `tmux-${Math.random().toString(36).slice(2, 8)}.sock`)
  const conf = join(dir, 'tmux.conf')
  writeFileSync(conf, 'set -g remain-on-exit on\n') // keep the last screen after the command ends
  const tmux = (args: string[]) => execa('tmux', ['-S', sock, ...args], { env, extendEnv: false })
  const statusFile = join(dir, `${basename(sock)}.status`)
  // A shell in between records the exit status: tmux here sometimes leaves its dead child unreaped.
  const wrapper = ['sh', '-c', '"$@"; echo $? > "$STATUS_FILE"', 'sh', ...argv]
  await tmux(['-f', conf, 'new-session', '-d', '-x', '200', '-y', '60', '-e', `STATUS_FILE=${statusFile}`, '--', ...wrapper])
  const screen = async () => String((await tmux(['capture-pane', '-p', '-J', '-S', '-200'])).stdout)
  const waitFor = async (re: RegExp, timeoutMs = 20_000) => {
    const end = Date.now() + timeoutMs
    let s = ''
    while (Date.now() < end) {
      s = await screen()
      if (re.test(s)) return s
      await sleep(100)
    }
    throw new Error(`screen never matched ${re} in ${timeoutMs} ms; it shows:\n${s}`)
  }
  const keys = async (...names: string[]) => void (await tmux(['send-keys', '-t', '0', ...names]))
  return {
    screen,
    waitFor,
    keys,
    type: async (text) => void (await tmux(['send-keys', '-t', '0', '-l', text])),
    moveTo: async (label) => {
      for (let i = 0; i < 20; i++) {
        const s = await screen()
        if (s.split('\n').some((l) => l.startsWith('❯') && l.includes(label))) return
        await keys('Down')
        await sleep(150)
      }
      throw new Error(`no choice "${label}" on:\n${await screen()}`)
    },
    exited: async (timeoutMs = 120_000) => {
      const end = Date.now() + timeoutMs
      while (Date.now() < end) {
        const status = existsSync(statusFile) ? readFileSync(statusFile, 'utf8').trim() : ''
        if (status) return Number(status)
        await sleep(200)
      }
      throw new Error(`still running after ${timeoutMs} ms:\n${await screen()}`)
    },
    close: async () => void (await execa('tmux', ['-S', sock, 'kill-server'], { reject: false })),
  }
}
