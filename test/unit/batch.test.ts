// Several VMs in one process: each VM's failure is its own outcome, results keep the order of the
// names, at most N run at once, and a bug (or a signal) stops the batch once those under way end.
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { ToolError, UserError } from '../../src/errors.js'
import { batchExitCode, eachVm } from '../../src/services/batch.js'

describe('eachVm', () => {
  it('keeps the order of the names, records a VM failure and goes on', async () => {
    const out = await eachVm(['a', 'b', 'c'], async (n) => {
      await sleep(n === 'a' ? 30 : 1)
      if (n === 'b') throw new UserError('machine b: bad memory')
      return n.toUpperCase()
    }, undefined, 3)
    expect(out).toEqual([
      { name: 'a', outcome: 'ok', result: 'A' },
      { name: 'b', outcome: 'failed', error: 'machine b: bad memory', code: 2 },
      { name: 'c', outcome: 'ok', result: 'C' },
    ])
  })

  it('runs at most `concurrency` at once', async () => {
    let running = 0
    let most = 0
    await eachVm(['a', 'b', 'c', 'd', 'e', 'f'], async () => {
      most = Math.max(most, ++running)
      await sleep(5)
      running--
    }, undefined, 2)
    expect(most).toBe(2)
  })

  it('a bug stops starting new VMs, lets the ones under way finish, then is thrown', async () => {
    const finished: string[] = []
    const run = eachVm(['a', 'b', 'c', 'd'], async (n) => {
      if (n === 'a') throw new Error('bug')
      await sleep(10)
      finished.push(n)
    }, undefined, 2)
    await expect(run).rejects.toThrow('bug')
    expect(finished).toEqual(['b'])
  })
})

describe('batchExitCode', () => {
  const ok = { name: 'a', outcome: 'ok' as const }
  const user = { name: 'b', outcome: 'failed' as const, code: new UserError('x').exitCode }
  const tool = { name: 'c', outcome: 'failed' as const, code: new ToolError('qemu-img', [], 1, '').exitCode }
  it('is 0 when all went well, 3 for a partial failure, the shared status when every VM failed alike', () => {
    expect(batchExitCode([ok, ok])).toBe(0)
    expect(batchExitCode([ok, user])).toBe(3)
    expect(batchExitCode([user, { ...user, name: 'd' }])).toBe(2)
    expect(batchExitCode([user, tool])).toBe(3)
  })
})
