// Fleet ids (made once, durably, never replaced) and the ownership rules, without libvirt.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fleetId, fleetIdFile, readFleetId } from '../../src/store/fleet-id.js'
import { ownershipProblem } from '../../src/services/ownership.js'

const root = mkdtempSync(join(tmpdir(), 'fleet-id-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

describe('fleet id', () => {
  it('is made on first use (state folder included), kept after, and read-only reads write nothing', async () => {
    const paths = { state: join(root, 'a', 'state') }
    expect(await readFleetId(paths)).toBeUndefined()
    expect(existsSync(paths.state)).toBe(false)
    const id = await fleetId(paths)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(readFileSync(fleetIdFile(paths), 'utf8')).toBe(`${id}\n`)
    expect(await fleetId(paths)).toBe(id)
    expect(await readFleetId(paths)).toBe(id)
    expect(readdirSync(paths.state)).toEqual(['fleet-id']) // no temp file left
  })

  it('gives every racer the one id that won', async () => {
    const paths = { state: join(root, 'race') }
    const ids = await Promise.all(Array.from({ length: 20 }, () => fleetId(paths)))
    expect(new Set(ids).size).toBe(1)
    expect(await readFleetId(paths)).toBe(ids[0])
  })

  it('refuses a damaged id file instead of replacing it', async () => {
    const paths = { state: join(root, 'bad') }
    await fleetId(paths)
    writeFileSync(fleetIdFile(paths), 'garbage\n')
    await expect(fleetId(paths)).rejects.toThrow(/does not hold a fleet id/)
    expect(readFileSync(fleetIdFile(paths), 'utf8')).toBe('garbage\n')
  })
})

describe('ownership rules', () => {
  const ours = '11111111-1111-4111-8111-111111111111'
  const theirs = '22222222-2222-4222-8222-222222222222'
  const disks = ['/srv/b/vms/web1/boot.qcow2', '/srv/b/vms/web1/var.qcow2']

  it('owns a domain carrying this fleet id', () => {
    expect(ownershipProblem('web1', ours, { kind: 'fleet', fleetId: ours, machine: 'web1', disks }, false)).toBeUndefined()
  })

  it("names another fleet's id and where its disks are", () => {
    const p = ownershipProblem('web1', ours, { kind: 'fleet', fleetId: theirs, machine: 'web1', disks }, false)
    expect(p).toBe(`machine web1: the libvirt domain web1 belongs to another fleet (id ${theirs}, disks in /srv/b/vms/web1), not to this one (id ${ours})`)
    expect(ownershipProblem('web1', undefined, { kind: 'fleet', fleetId: theirs, machine: 'web1', disks }, false)).toMatch(/no fleet id yet/)
  })

  it('says a domain without fleet metadata was defined outside fleet', () => {
    expect(ownershipProblem('web1', ours, { kind: 'none', disks: [] }, false)).toBe('machine web1: the libvirt domain web1 has no fleet metadata: it was defined outside fleet (no disks)')
  })

  it('owns a legacy (id-less) fleet domain only when its disks are this state directory\'s', () => {
    expect(ownershipProblem('web1', ours, { kind: 'legacy', machine: 'web1', disks }, true)).toBeUndefined()
    expect(ownershipProblem('web1', ours, { kind: 'legacy', machine: 'web1', disks }, false)).toMatch(/older fleet that recorded no fleet id, from another state directory \(disks in \/srv\/b\/vms\/web1\)/)
  })
})
