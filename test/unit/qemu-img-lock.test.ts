// isLocked over a fake qemu-img (QEMU_IMG): the lock refusal is "locked", success is "free",
// anything else is a tool error, never a silent "not locked". The real thing is checked against
// a running qemu in test/integration/var-identity.test.ts.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { isLocked } from '../../src/adapters/qemu-img.js'
import { ToolError } from '../../src/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'fleet-fake-qemu-img-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A qemu-img that prints `stderr`, exits `code`, and records its arguments. */
function fake(stderr: string, code: number): string {
  const f = join(dir, `qemu-img-${code}-${Math.random().toString(36).slice(2)}`)
  writeFileSync(`${f}.stderr`, stderr)
  writeFileSync(f, `#!/bin/sh\necho "$@" > ${f}.args\ncat ${f}.stderr >&2\n[ ${code} -eq 0 ] && echo '{}'\nexit ${code}\n`)
  chmodSync(f, 0o755)
  return f
}

async function withQemuImg<T>(bin: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env.QEMU_IMG
  process.env.QEMU_IMG = bin
  try {
    return await fn()
  } finally {
    if (before === undefined) delete process.env.QEMU_IMG
    else process.env.QEMU_IMG = before
  }
}

describe('isLocked', () => {
  it('is true on qemu-img 7.2\'s lock refusal, and asks without -U / --force-share', async () => {
    const bin = fake(`qemu-img: Could not open '/x/var.qcow2': Failed to get shared "write" lock\nIs another process using the image [/x/var.qcow2]?\n`, 1)
    expect(await withQemuImg(bin, () => isLocked('/x/var.qcow2'))).toBe(true)
    const args = readFileSync(`${bin}.args`, 'utf8').trim().split(' ')
    expect(args).toEqual(['info', '--output=json', '/x/var.qcow2'])
  })

  it('is false when qemu-img opens the image', async () => {
    expect(await withQemuImg(fake('', 0), () => isLocked('/x/var.qcow2'))).toBe(false)
  })

  it('throws a ToolError carrying stderr for any other failure', async () => {
    const bin = fake(`qemu-img: Could not open '/x/none.qcow2': Could not open '/x/none.qcow2': No such file or directory\n`, 1)
    const err = await withQemuImg(bin, () => isLocked('/x/none.qcow2')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ToolError)
    expect((err as ToolError).stderr).toContain('No such file')
  })
})
