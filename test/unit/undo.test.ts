import { describe, expect, it } from 'vitest'
import { RolledBack, withUndo } from '../../src/util/undo.js'

describe('undo', () => {
  it('undoes registered steps newest first on failure and says what it removed', async () => {
    const order: string[] = []
    const err = await withUndo(async (u) => {
      u.add('a', async () => void order.push('a'))
      u.add('b', async () => void order.push('b'))
      u.add('c', async () => {
        throw new Error('busy')
      })
      throw new Error('step failed')
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RolledBack)
    const rb = err as RolledBack
    expect((rb.cause as Error).message).toBe('step failed')
    expect(order).toEqual(['b', 'a'])
    expect(rb.undo.removed).toEqual(['b', 'a'])
    expect(rb.undo.leftBehind).toEqual(['c (busy)'])
  })
  it('keeps the work when it succeeds', async () => {
    let undone = false
    await expect(withUndo(async (u) => {
      u.add('x', async () => void (undone = true))
      return 7
    })).resolves.toBe(7)
    expect(undone).toBe(false)
  })
})
