import { describe, expect, it } from 'vitest'
import { libvirtUri } from '../../src/util/env.js'

describe('libvirt URI', () => {
  it('LIBVIRT_URI, then LIBVIRT_DEFAULT_URI (as virsh honours it), then qemu:///system', () => {
    expect(libvirtUri({})).toBe('qemu:///system')
    expect(libvirtUri({ LIBVIRT_DEFAULT_URI: 'test:///default' })).toBe('test:///default')
    expect(libvirtUri({ LIBVIRT_DEFAULT_URI: 'test:///default', LIBVIRT_URI: 'qemu:///session' })).toBe('qemu:///session')
  })
})
