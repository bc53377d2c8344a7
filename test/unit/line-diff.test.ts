import { describe, expect, it } from 'vitest'
import { unifiedDiff } from '../../src/util/unified-diff.js'

const disks = (a: string, b: string) => `<domain>\n  <disk>\n    <driver type="qcow2"/>\n    <source file="${a}"/>\n  </disk>\n  <disk>\n    <driver type="qcow2"/>\n    <source file="${b}"/>\n  </disk>\n</domain>\n`

describe('upgrade --dry-run XML diff: a unified diff', async () => {
  it('shows a changed line in its hunk, with context', async () => {
    expect(await unifiedDiff('a\nb\nc\n', 'a\nB\nc\n', 'old', 'new')).toEqual(['--- old', '+++ new', '@@ -1,3 +1,3 @@', ' a', '-b', '+B', ' c'])
  })
  it('changing the second disk from qcow2 to raw names that disk\'s line, not just "+ raw"', async () => {
    const after = disks('boot.qcow2', 'var.qcow2').replace(/(<source file="boot.qcow2"\/>[\s\S]*?)<driver type="qcow2"\/>/, '$1<driver type="raw"/>')
    const d = await unifiedDiff(disks('boot.qcow2', 'var.qcow2'), after)
    expect(d.filter((l) => /^[-+] /.test(l))).toEqual(['-    <driver type="qcow2"/>', '+    <driver type="raw"/>'])
    expect(d).toContain('     <source file="var.qcow2"/>')
    expect(d.find((l) => l.startsWith('@@'))).toMatch(/^@@ -\d+,\d+ \+\d+,\d+ @@$/)
  })
  it('shows two swapped disk sources (a set comparison shows nothing)', async () => {
    const d = await unifiedDiff(disks('boot.qcow2', 'var.qcow2'), disks('var.qcow2', 'boot.qcow2'))
    expect(d).toContain('-    <source file="boot.qcow2"/>')
    expect(d).toContain('+    <source file="var.qcow2"/>')
    expect(d).toContain('-    <source file="var.qcow2"/>')
    expect(d).toContain('+    <source file="boot.qcow2"/>')
  })
  it('is empty for equal text and all + for a new file', async () => {
    expect(await unifiedDiff('a\nb', 'a\nb')).toEqual([])
    expect(await unifiedDiff('', 'a\nb')).toEqual(['--- a', '+++ b', '@@ -0,0 +1,2 @@', '+a', '+b'])
  })
})
