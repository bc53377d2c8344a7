#!/usr/bin/env node
// The repository root is an example fleet: machines/ and the libvirt/ XML fleet generates for
// them. This regenerates libvirt/ (or, with --check, exits 1 naming every file that would
// change) the way `fleet build-libvirt-xml` writes it for the default state directory
// /var/lib/fleet: a throwaway copy of machines/ and a throwaway state directory whose path is put
// back as /var/lib/fleet, with fixed host settings (KVM, slirp, the example fleet id), so the
// result is the same on every Debian host.
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const ROOT = new URL('..', import.meta.url).pathname
const STATE = '/var/lib/fleet'
const FLEET_ID = '6c1e3b52-58a4-4c39-9d0e-2f9a7a0e5f01' // the example fleet's id (any UUID; fixed so the XML is)
const check = process.argv.includes('--check')

const dir = mkdtempSync(join(tmpdir(), 'fleet-example-'))
try {
  const repo = join(dir, 'repo')
  const state = join(dir, 'state')
  cpSync(join(ROOT, 'machines'), join(repo, 'machines'), { recursive: true })
  mkdirSync(join(repo, 'libvirt'), { recursive: true })
  mkdirSync(state, { recursive: true })
  writeFileSync(join(state, 'fleet-id'), `${FLEET_ID}\n`)
  execFileSync(join(ROOT, 'bin', 'fleet'), ['build-libvirt-xml', '--json'], {
    env: { ...process.env, FLEET_REPO: repo, FLEET_STATE_DIR: state, FLEET_VIRT_TYPE: 'kvm', FLEET_USER_NET: 'slirp', FLEET_ON_REBOOT: 'restart' },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const made = readdirSync(join(repo, 'libvirt')).filter((f) => f.endsWith('.xml')).sort()
  const committed = readdirSync(join(ROOT, 'libvirt')).filter((f) => f.endsWith('.xml')).sort()
  const stale = []
  for (const f of new Set([...made, ...committed])) {
    const want = made.includes(f) ? readFileSync(join(repo, 'libvirt', f), 'utf8').replaceAll(state, STATE) : undefined
    const have = committed.includes(f) ? readFileSync(join(ROOT, 'libvirt', f), 'utf8') : undefined
    if (want === have) continue
    stale.push(`libvirt/${f}${want === undefined ? ' (no machine of that name)' : have === undefined ? ' (missing)' : ''}`)
    if (!check) {
      if (want === undefined) rmSync(join(ROOT, 'libvirt', f))
      else writeFileSync(join(ROOT, 'libvirt', f), want)
    }
  }
  if (check && stale.length) {
    process.stderr.write(`fleet build-libvirt-xml would change: ${stale.join(', ')}\nRun: node scripts/example-xml.mjs (then commit libvirt/)\n`)
    process.exit(1)
  }
  process.stdout.write(stale.length ? `${check ? 'stale' : 'wrote'}: ${stale.join(', ')}\n` : 'libvirt/ is up to date\n')
} finally {
  rmSync(dir, { recursive: true, force: true })
}
