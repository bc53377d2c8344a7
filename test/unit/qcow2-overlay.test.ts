// fleet's own qcow2 overlay writer against qemu-img: the same bytes as `qemu-img create -f qcow2
// -b BACKING -F qcow2` for backing images of many sizes, an image qemu-img check finds clean, and
// one qemu reads through to its backing and writes into. Outside the simple case qemu-img runs.
import { execa } from 'execa'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createOverlay, overlayBytes } from '../../src/store/qcow2-overlay.js'

const dir = mkdtempSync(join(tmpdir(), 'fleet-qcow2-overlay-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const info = async (f: string) => {
  const j = JSON.parse((await execa('qemu-img', ['info', '--output=json', f])).stdout) as Record<string, unknown>
  delete j.filename
  return j
}

describe('qcow2 overlay written in-process', () => {
  // One L1 entry maps 512 MiB; 4 TiB fills the L1 table's cluster exactly.
  const sizes = ['1M', '67109376', '64M', '512M', '513M', '1G', '20G', '1T', '4T']
  for (const size of sizes) {
    it(`backing of ${size}: byte for byte what qemu-img create writes, and qemu-img check finds it clean`, async () => {
      const backing = join(dir, `base-${size}.qcow2`)
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', backing, size])
      const ours = join(dir, `ours-${size}.qcow2`)
      const theirs = join(dir, `theirs-${size}.qcow2`)
      await createOverlay(ours, backing)
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', 'qcow2', theirs])
      expect(readFileSync(ours).equals(readFileSync(theirs)), `${ours} differs from ${theirs}`).toBe(true)
      expect(await info(ours)).toEqual(await info(theirs))
      const check = await execa('qemu-img', ['check', '--output=json', ours])
      expect(JSON.parse(check.stdout)).toMatchObject({ 'check-errors': 0 })
      expect(JSON.parse(check.stdout).leaks ?? 0).toBe(0)
    })
  }

  it('reads through to its backing image and takes writes of its own (qemu-io), still clean after', async () => {
    const backing = join(dir, 'pattern.qcow2')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', backing, '64M'])
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 1M 64k', backing])
    const ov = join(dir, 'pattern-overlay.qcow2')
    await createOverlay(ov, backing)
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0xab 1M 64k', ov]).then((r) => expect(r.stdout).not.toMatch(/fail|mismatch/i))
    await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xcd 0 128k', ov])
    const r = await execa('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0xcd 0 128k', '-c', 'read -P 0xab 1M 64k', ov])
    expect(r.stdout).not.toMatch(/fail|mismatch/i)
    await execa('qemu-img', ['check', ov])
    const back = await execa('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0 0 128k', backing])
    expect(back.stdout, 'the backing image is untouched').not.toMatch(/fail|mismatch/i)
  })

  it('never overwrites an existing file', async () => {
    const backing = join(dir, 'b.qcow2')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', backing, '64M'])
    const there = join(dir, 'there.qcow2')
    writeFileSync(there, 'keep')
    await expect(createOverlay(there, backing)).rejects.toMatchObject({ code: 'EEXIST' })
    expect(readFileSync(there, 'utf8')).toBe('keep')
  })

  it('leaves what it does not write itself to qemu-img: an L1 table over one cluster, a backing that is not qcow2', async () => {
    expect(overlayBytes('/x/b.qcow2', 4n * 2n ** 40n + 1n)).toBeUndefined()
    expect(overlayBytes('/x/b.qcow2', 0n)).toBeUndefined()
    const big = join(dir, 'big.qcow2')
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', big, '5T'])
    await createOverlay(join(dir, 'big-overlay.qcow2'), big)
    expect((await info(join(dir, 'big-overlay.qcow2')))['virtual-size']).toBe(5 * 2 ** 40)
    const raw = join(dir, 'raw.img')
    writeFileSync(raw, Buffer.alloc(4096))
    await expect(createOverlay(join(dir, 'raw-overlay.qcow2'), raw)).rejects.toMatchObject({ name: 'ToolError' })
  })
})
