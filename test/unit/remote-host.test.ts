// Remote hosts without a host: which URIs a machine may name, and the quoting of every word fleet
// sends to a remote shell (checked against a real sh, with the words that break naive quoting).
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { jumpThrough, remoteCommand, sshArgs } from '../../src/adapters/remote-shell.js'
import { checkHostUri, hostLabel, vmHost } from '../../src/hosts/host-uri.js'

describe('machine.json host', () => {
  it('accepts this host and qemu+ssh:// URIs, refuses the rest naming the value', () => {
    for (const ok of ['', 'qemu+ssh://root@kvm2/system', 'qemu+ssh://u@127.0.0.1:2222/session?keyfile=/k&no_verify=1&no_tty=1']) expect(checkHostUri(ok), ok).toBeUndefined()
    const bad: [string, RegExp][] = [
      ['kvm2', /not a libvirt URI/], ['http://example.org/system', /only qemu\+ssh:\/\/ .* is supported/], ['qemu:///system', /is this host: leave host empty/], ['qemu+ssh://kvm2/', /must end in \/system or \/session/],
      ['qemu+tcp://kvm2/system', /not qemu\+tcp/], ['qemu://kvm2/system', /has no host name/], ['qemu+ssh://kvm2/system?keyfile=rel', /absolute/], ['qemu+ssh://kvm2/system?evil=1', /unknown URI parameter "evil"/],
    ]
    for (const [uri, why] of bad) {
      expect(checkHostUri(uri), uri).toMatch(why)
      expect(checkHostUri(uri), uri).toContain(uri)
    }
  })

  it('reads the ssh login out of the URI; no host is the --connect / LIBVIRT_DEFAULT_URI one', () => {
    const h = vmHost('qemu+ssh://admin@kvm2.example.org:2200/system?keyfile=/root/.ssh/k&no_verify=1')
    expect(h.ssh).toEqual({ user: 'admin', host: 'kvm2.example.org', port: 2200, keyfile: '/root/.ssh/k', noVerify: true })
    expect(hostLabel(h)).toBe('admin@kvm2.example.org:2200/system')
    expect(vmHost(undefined, { LIBVIRT_DEFAULT_URI: 'qemu:///session' })).toEqual({ uri: 'qemu:///session' })
    expect(vmHost('', { LIBVIRT_URI: 'qemu:///system' }).ssh).toBeUndefined()
  })
})

describe('remote command quoting', () => {
  const nasty = ["it's", '$(touch /tmp/pwned)', '`id`', 'a b\tc', '"q"', '\\', '*', ';', '&&', '', '-n', '\n', '~', '%h:%p']
  it('a POSIX shell gets back exactly the words, none expanded', async () => {
    const r = await execa('sh', ['-c', `printf '%s\\0' ${remoteCommand(nasty)}`])
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(nasty)
  })
  it('the ProxyCommand through a host is one quoted command ending in -W %h:%p and the destination', () => {
    const login = { user: 'u', host: 'h', port: 22, keyfile: "/k e'y", noVerify: false }
    const argv = jumpThrough(login)
    expect(argv[0]).toBe('ssh')
    expect(argv.slice(-3)).toEqual(['-W', '%h:%p', 'u@h'])
    expect(argv).toContain("/k e'y")
    expect(sshArgs(login).at(-1)).toBe('u@h')
  })
})
