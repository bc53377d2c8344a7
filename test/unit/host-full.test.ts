// A remote host whose disk is full: the failing step's error becomes one naming the machine and the
// host (exit 2); any other error is left as it is. (A real full disk is not made here: the test
// host's pool folder lives on the machine's one shared filesystem.)
import { describe, expect, it } from 'vitest'
import { ToolError, UserError } from '../../src/errors.js'
import { vmHost } from '../../src/hosts/host-uri.js'
import { hostFull, type RemoteHost } from '../../src/services/remote-disks.js'

const host = vmHost('qemu+ssh://admin@kvm2.example.org/system') as RemoteHost

describe('hostFull', () => {
  it('names the machine, the host and the line that says so; keeps the original as the cause', () => {
    const e = new ToolError('ssh', ['kvm2', 'sh'], 1, 'mke2fs 1.47.0\nmkfs.ext4: No space left on device while writing out and closing file system\n')
    const u = hostFull(e, 'web7', host)
    expect(u).toBeInstanceOf(UserError)
    expect(u!.exitCode).toBe(2)
    expect(u!.message).toBe('machine web7: no space left on admin@kvm2.example.org/system (ssh: mkfs.ext4: No space left on device while writing out and closing file system)')
    expect(u!.hint).toContain('pool-info fleet')
    expect(u!.cause).toBe(e)
    expect(hostFull(new ToolError('virsh', ['vol-upload'], 1, 'error: cannot write to stream: ENOSPC'), 'web7', host)?.message).toMatch(/^machine web7: no space left on .*ENOSPC/)
  })

  it('leaves every other error alone', () => {
    expect(hostFull(new ToolError('virsh', ['vol-create-as'], 1, 'error: Permission denied'), 'web7', host)).toBeUndefined()
    expect(hostFull(new Error('No space left on device'), 'web7', host)).toBeUndefined()
    expect(hostFull(undefined, 'web7', host)).toBeUndefined()
  })
})
