// E2fsSession over a fake qemu-storage-daemon (QEMU_STORAGE_DAEMON) that "exports" a raw ext4
// by copying it to the mountpoint, with the real debugfs: the command/marker protocol, folder
// listings, errors debugfs only prints, and the supervisor stopping the daemon on close. The real
// FUSE export is exercised in test/integration/var-identity.test.ts.
import { execa } from 'execa'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { debugfsCmd as c, E2fsSession } from '../../src/adapters/e2fs.js'
import { ToolError } from '../../src/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'fleet-fake-qsd-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// Copies $FAKE_RAW to every --export mountpoint, writes the pid file, then waits for SIGTERM and
// records that it was stopped.
const qsd = join(dir, 'qsd')
writeFileSync(qsd, `#!/bin/bash
pidfile=
while [ $# -gt 0 ]; do
  case $1 in
    --export) m=$(printf '%s' "$2" | sed -n 's/.*"mountpoint":"\\([^"]*\\)".*/\\1/p'); cp "$FAKE_RAW" "$m"; shift 2 ;;
    --pidfile) pidfile=$2; shift 2 ;;
    *) shift ;;
  esac
done
trap 'echo stopped > "$FAKE_RAW.stopped"; exit 0' TERM
echo $$ > "$pidfile"
while :; do sleep 0.05; done
`)
chmodSync(qsd, 0o755)

describe('E2fsSession', () => {
  it('lists folders, writes, reports what debugfs only prints as an error, and stops the daemon on close', async () => {
    const root = join(dir, 'root')
    mkdirSync(join(root, 'identity'), { recursive: true })
    writeFileSync(join(root, 'identity', 'hostname'), 'h\n')
    const raw = join(dir, 'var.raw')
    await execa('mkfs.ext4', ['-q', '-F', '-L', 'var', '-E', 'root_owner=0:0', '-d', root, raw, '8M'])
    const exports = join(dir, 'exports')
    mkdirSync(exports)
    const before = { q: process.env.QEMU_STORAGE_DAEMON, r: process.env.FAKE_RAW }
    process.env.QEMU_STORAGE_DAEMON = qsd
    process.env.FAKE_RAW = raw
    try {
      const s = await E2fsSession.open(['/nowhere/var.qcow2'], exports)
      await s.batch([s.open(0)])
      expect((await s.list('/'))?.map((e) => [e.name, e.dir]).sort()).toEqual([['identity', true], ['lost+found', true]])
      expect(await s.list('/identity.new')).toBeUndefined()
      expect(await s.list('/identity/hostname')).toBeUndefined() // a file is no folder
      writeFileSync(join(dir, 'local'), 'x')
      await s.batch([c.mkdir('/identity.new'), c.put(join(dir, 'local'), '/identity.new/f'), ...c.attrs('/identity.new/f', 0o100600, 0, 0)])
      await s.batch([...c.rename('/identity', '/identity.old'), ...c.rename('/identity.new', '/identity'), c.close(), s.open(0)])
      expect((await s.list('/'))?.map((e) => e.name).sort()).toEqual(['identity', 'identity.old', 'lost+found'])
      // debugfs exits 0 and only prints its complaint: that is an error, naming the command.
      const err = await s.batch([c.rm('/no-such-file')]).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ToolError)
      expect((err as ToolError).args.join(' ')).toContain('rm "/no-such-file"')
      await expect(s.batch([c.rm('/a"b')])).rejects.toThrow(/quote/)
      await s.batch([c.close()])
      await s.close()
      expect(readFileSync(`${raw}.stopped`, 'utf8').trim()).toBe('stopped')
      const ls = String((await execa('debugfs', ['-R', 'ls -l /identity', join(exports, '0.img')])).stdout)
      expect(ls).toMatch(/100600 \(1\)\s+0\s+0\s+1 .* f$/m)
    } finally {
      process.env.QEMU_STORAGE_DAEMON = before.q
      process.env.FAKE_RAW = before.r
      if (before.q === undefined) delete process.env.QEMU_STORAGE_DAEMON
      if (before.r === undefined) delete process.env.FAKE_RAW
    }
    expect(existsSync(join(exports, 'qsd.pid'))).toBe(true)
  })
})
