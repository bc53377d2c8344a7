// QmpClient against a scripted monitor on a unix socket: greeting and capabilities first, events
// skipped, one command at a time in order, QEMU's errors as ToolErrors, a monitor that goes away
// fails the command under way instead of hanging. The real daemon: test/integration/var-identity.test.ts.
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { QmpClient } from '../../src/adapters/qmp.js'
import { ToolError } from '../../src/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'fleet-qmp-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A monitor that answers each command with `answer(command)` (undefined: hang up). */
async function monitor(answer: (cmd: { execute: string; arguments?: Record<string, unknown> }) => string[] | undefined): Promise<{ path: string; seen: string[]; close: () => void }> {
  const path = join(dir, `m${Math.random().toString(36).slice(2)}.sock`)
  const seen: string[] = []
  const sockets: Socket[] = []
  const server = createServer((c) => {
    sockets.push(c)
    c.write('{"QMP": {"version": {}, "capabilities": []}}\r\n')
    let buf = ''
    c.on('data', (d) => {
      buf += String(d)
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const cmd = JSON.parse(buf.slice(0, nl)) as { execute: string }
        buf = buf.slice(nl + 1)
        seen.push(cmd.execute)
        const out = answer(cmd)
        if (out === undefined) c.destroy()
        else c.write(out.map((l) => `${l}\r\n`).join(''))
      }
    })
  })
  await new Promise<void>((r) => server.listen(path, r))
  return { path, seen, close: () => { for (const s of sockets) s.destroy(); server.close() } }
}

describe('QmpClient', () => {
  it('negotiates, skips events, returns results in order and turns errors into ToolErrors', async () => {
    const m = await monitor((c) => c.execute === 'qmp_capabilities' ? ['{"return": {}}']
      : c.execute === 'bad' ? ['{"error": {"class": "GenericError", "desc": "Snapshot with name \'x\' does not exist"}}']
        : ['{"event": "JOB_STATUS_CHANGE", "data": {}}', `{"return": ${JSON.stringify({ echo: c.arguments ?? null })}}`])
    const q = await QmpClient.open(m.path)
    const [a, b] = await Promise.all([q.execute('one', { n: 1 }), q.execute('two')])
    expect(a).toEqual({ echo: { n: 1 } })
    expect(b).toEqual({ echo: null })
    const err = await q.execute('bad', { name: 'x' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ToolError)
    expect((err as Error).message).toContain("GenericError: Snapshot with name 'x' does not exist")
    expect(m.seen).toEqual(['qmp_capabilities', 'one', 'two', 'bad'])
    q.close()
    m.close()
  })

  it('a monitor that hangs up fails the command under way and those after it', async () => {
    const m = await monitor((c) => (c.execute === 'qmp_capabilities' ? ['{"return": {}}'] : undefined))
    const q = await QmpClient.open(m.path)
    await expect(q.execute('blockdev-snapshot-internal-sync', { device: 'd0', name: 'p' })).rejects.toBeInstanceOf(ToolError)
    await expect(q.execute('query-named-block-nodes')).rejects.toBeInstanceOf(ToolError)
    m.close()
  })

  it('no monitor at the path is a ToolError naming it', async () => {
    await expect(QmpClient.open(join(dir, 'nothing.sock'))).rejects.toThrow(/qmp failed/)
  })
})
