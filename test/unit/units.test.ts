import { describe, expect, it } from 'vitest'
import { humanSize, parseSize } from '../../src/util/units.js'

describe('sizes', () => {
  it.each([
    ['512M', 512 * 1024 ** 2], ['2G', 2 * 1024 ** 3], ['1.5G', 1.5 * 1024 ** 3], ['1024k', 1024 ** 2], ['2GiB', 2 * 1024 ** 3], ['4096', 4096],
  ])('parses %s', (text, bytes) => expect(parseSize(text)).toBe(bytes))

  it.each(['', 'M', '12Q', '-1G', '1..2G', 'one'])('refuses %j', (text) => expect(parseSize(text)).toBeUndefined())

  it('prints human sizes', () => {
    expect(humanSize(1536 * 1024 ** 2)).toBe('1.5 GiB')
  })
})
