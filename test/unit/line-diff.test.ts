import { describe, expect, it } from 'vitest'
import { lineDiff } from '../../src/services/upgrade.js'

describe('upgrade --dry-run XML diff', () => {
  it('shows a changed line as - then + in place', () => {
    expect(lineDiff('a\nb\nc', 'a\nB\nc')).toEqual(['- b', '+ B'])
  })
  it('shows two swapped lines (a set comparison shows nothing)', () => {
    expect(lineDiff('<disk>x</disk>\n<disk>y</disk>', '<disk>y</disk>\n<disk>x</disk>')).toEqual(['- <disk>x</disk>', '+ <disk>x</disk>'])
  })
  it('shows a repeated line changing in only one place', () => {
    expect(lineDiff('qcow2\nqcow2', 'qcow2\nraw')).toEqual(['- qcow2', '+ raw'])
  })
  it('is empty for equal text and all + for a new file', () => {
    expect(lineDiff('a\nb', 'a\nb')).toEqual([])
    expect(lineDiff('', 'a\nb')).toEqual(['+ a', '+ b'])
  })
})
