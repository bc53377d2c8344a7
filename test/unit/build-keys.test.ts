import { describe, expect, it } from 'vitest'
import { bootstrapSpec, bootstrapTarball, debianPackages } from '../../src/builders/debian.js'
import { installable } from '../../src/builders/nix.js'
import { channelKey, parseChannelKey } from '../../src/store/images.js'

describe('channels per architecture', () => {
  it('keeps x86_64 under the plain name and other arches under NAME@ARCH, both ways', () => {
    expect(channelKey('base')).toBe('base')
    expect(channelKey('base', 'x86_64')).toBe('base')
    expect(channelKey('base', 'aarch64')).toBe('base@aarch64')
    expect(parseChannelKey('base@aarch64')).toEqual({ channel: 'base', arch: 'aarch64' })
    expect(parseChannelKey('staging')).toEqual({ channel: 'staging', arch: 'x86_64' })
  })
})

describe('builder inputs', () => {
  it('names the flake output of the requested system, as a path: flake', () => {
    expect(installable('/srv/fleet/nix', 'aarch64')).toBe('path:/srv/fleet/nix#packages.aarch64-linux.base-image')
    // One image per channel (nix/lib.nix mkFleetOutputs: packages.<system>.<image>-image).
    expect(installable('/srv/fleet/nix', 'x86_64', 'web')).toBe('path:/srv/fleet/nix#packages.x86_64-linux.web-image')
  })

  it('caches a bootstrap per suite, arch, mirror and package list', () => {
    const a = bootstrapTarball('/c', bootstrapSpec('x86_64'))
    expect(a).toMatch(/^\/c\/debian-bookworm-amd64-[0-9a-f]{16}\.tar$/)
    expect(bootstrapTarball('/c', bootstrapSpec('x86_64'))).toBe(a)
    expect(bootstrapTarball('/c', bootstrapSpec('aarch64'))).toMatch(/debian-bookworm-arm64-/)
    expect(bootstrapTarball('/c', bootstrapSpec('x86_64', 'http://mirror.example/debian'))).not.toBe(a)
    expect(bootstrapTarball('/c', { ...bootstrapSpec('x86_64'), packages: [...debianPackages('x86_64'), 'vim'] })).not.toBe(a)
  })

  it('installs what the guest contract needs, with the kernel for the arch', () => {
    expect(debianPackages('x86_64')).toEqual(expect.arrayContaining(['systemd-sysv', 'openssh-server', 'qemu-guest-agent', 'nftables', 'linux-image-cloud-amd64', 'systemd-boot-efi']))
    expect(debianPackages('aarch64')).toContain('linux-image-cloud-arm64')
  })
})
