// fleet plan: what differs between the repository (machines/, the channels) and what is really
// there — the domain libvirt holds (parsed into the domain model and compared field by field),
// the boot overlay's backing image, and the identity fleet last wrote (vms/NAME/identity.json).
// Read-only: no lock, no process per VM (libvirt over its one connection, qcow2 headers and
// manifests read in-process).
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import * as libvirt from '../adapters/libvirt.js'
import { UserError } from '../errors.js'
import type { Machine } from '../machines/model.js'
import { loadAllMachines, readIdentityFiles } from '../machines/repository.js'
import { hostLabel } from '../hosts/host-uri.js'
import { parseDomain } from '../xml/serialize.js'
import { remoteHost } from './remote-vm.js'
import type { RemoteHost } from './remote-disks.js'
import { isVmName, vmName, type VmName } from '../name.js'
import { readIntent, vmTarget } from '../ops/intent.js'
import { vmFiles } from '../repo.js'
import { readFleetId } from '../store/fleet-id.js'
import { channelKey, digestOfPath, imagePath, overlayBackingFile, readChannels, type Channels } from '../store/images.js'
import { diffDomain, type DomainChange } from '../xml/diff-domain.js'
import { parseDomainModel, readDomain } from '../xml/parse-domain.js'
import type { FleetContext } from './context.js'
import { machineDomain } from './domain-xml.js'
import { diffManifest, manifestOf, readManifest, type IdentityDiff } from './identity-manifest.js'
import { ownershipProblem } from './ownership.js'
import { drifted, remoteDrift } from './remote-drift.js'

/**
 * create: no domain and no boot overlay (a /var disk destroy-vm kept is reused);
 * define: disks there, no domain; redefine: the domain differs from machines/NAME;
 * upgrade: base behind its channel or identity changed (the upgrade also redefines);
 * orphan: this fleet's domain or disks with no machines/NAME; foreign: a domain of a fleet
 * machine's name that is not this fleet's (reported, never touched); broken: fleet cannot
 * say what to do (reason given); in-sync.
 */
export type PlanAction = 'create' | 'define' | 'redefine' | 'upgrade' | 'orphan' | 'foreign' | 'broken' | 'in-sync'

export interface PlanEntry {
  name: string
  action: PlanAction
  /** apply would change something for it (or, foreign/broken, someone must look at it). */
  pending: boolean
  state: string
  /** Domain fields that differ, each saying whether libvirt applies it live or it needs a restart. */
  changes: DomainChange[]
  /** A redefine (or upgrade) that only takes effect after a restart of the running domain. */
  needsRestart: boolean
  base?: { from: string; to: string }
  identity?: IdentityDiff
  /** What apply does, or why it does nothing. */
  detail: string
  /** An operation a killed fleet left; the next command locking the VM resolves it first. */
  interrupted?: string
}

export interface PlanResult {
  vms: PlanEntry[]
  /** Counts per action. */
  summary: Partial<Record<PlanAction, number>>
  pending: boolean
}

const identityChanged = (d: IdentityDiff) => d.added.length + d.changed.length + d.removed.length > 0

interface Host {
  ours: string | undefined
  channels: Channels
  domains: Map<string, libvirt.DomainSnapshot>
}

/** What differs, per VM: every machine (or the named ones) and every orphan of this fleet. */
export async function planFleet(ctx: FleetContext, names: readonly string[] = []): Promise<PlanResult> {
  const wanted = names.length ? new Set(names.map((n) => vmName(n))) : undefined
  const [machines, domains, channels, ours] = await Promise.all([
    loadAllMachines(ctx.paths), libvirt.listDomains(), readChannels(ctx.paths), readFleetId(ctx.paths),
  ])
  const host: Host = { ours, channels, domains: new Map(domains.map((d) => [d.name, d])) }
  const known = new Set<string>(machines.map((m) => m.name))
  const vms = await Promise.all(machines.filter((m) => !wanted || wanted.has(m.name)).map((m) => planMachine(ctx, host, m)))
  vms.push(...(await orphans(ctx, host, known)).filter((o) => !wanted || wanted.has(o.name as VmName)))
  for (const n of wanted ?? []) {
    if (!vms.some((v) => v.name === n)) throw new UserError(`machine ${n}: no ${ctx.paths.machines}/${n}, no domain of this fleet and no disks of that name`, 'Check the name; `fleet plan` without names lists everything.')
  }
  await Promise.all(vms.map(async (v) => {
    const i = isVmName(v.name) ? await readIntent(ctx.paths, vmTarget(v.name)) : undefined
    if (i) v.interrupted = `${i.intent.op} at ${i.intent.phase}`
  }))
  vms.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const summary: Partial<Record<PlanAction, number>> = {}
  for (const v of vms) summary[v.action] = (summary[v.action] ?? 0) + 1
  return { vms, summary, pending: vms.some((v) => v.pending) }
}

function entry(name: string, action: PlanAction, state: string, detail: string, more: Partial<PlanEntry> = {}): PlanEntry {
  return { name, action, pending: action !== 'in-sync', state, changes: [], needsRestart: false, detail, ...more }
}

/** The owner a domain's fleet metadata names (none: defined outside fleet). */
function ownerOf(fleet: { fleetId?: string; machine: string } | undefined, disks: string[]): libvirt.DomainOwner {
  if (!fleet) return { kind: 'none', disks }
  return fleet.fleetId ? { kind: 'fleet', fleetId: fleet.fleetId, machine: fleet.machine, disks } : { kind: 'legacy', machine: fleet.machine, disks }
}

/**
 * A VM on a remote host, asked there: missing (create), not this fleet's (foreign), on another
 * base than its channel, or with identity or definition drift (upgrade), else in sync.
 */
async function planRemote(ctx: FleetContext, host: Host, m: Machine, remote: RemoteHost): Promise<PlanEntry> {
  const where = `on ${hostLabel(remote)}`
  let xml: string | undefined
  let state: string
  try {
    xml = await libvirt.domainXml(m.name, true, remote.uri)
    state = (await libvirt.domainState(m.name, remote.uri)) ?? 'not defined'
  } catch (e) {
    return entry(m.name, 'broken', 'unreachable', `${where}: ${(e as Error).message.split('\n')[0]}`)
  }
  if (!xml) return entry(m.name, 'create', state, `create ${where}: base shipped (once per digest), boot overlay and /var volumes there, define`)
  const problem = ownershipProblem(m.name, host.ours, ownerOf(parseDomain(xml).fleet, []), false)
  if (problem) return entry(m.name, 'foreign', state, `${where}: ${problem}; never touched (pick another machine name, or take it over with --adopt)`)
  const to = host.channels[channelKey(m.base, m.arch)]?.digest
  if (!to) return entry(m.name, 'broken', state, `base channel "${m.base}" has no ${m.arch} image`)
  const from = parseDomain(xml).base?.digest ?? 'unknown'
  if (from !== to) return entry(m.name, 'upgrade', state, `upgrade ${where}: rebase onto ${to.slice(0, 12)}, identity resynced`, { base: { from, to } })
  const drift = await remoteDrift(ctx, m, xml)
  if (!drifted(drift)) return entry(m.name, 'in-sync', state, where)
  const what = [drift.changes.length ? `definition (${drift.changes.map((c) => c.field).join(', ')})` : '', drifted({ ...drift, changes: [] }) ? 'identity' : ''].filter(Boolean).join(' and ')
  return entry(m.name, 'upgrade', state, `upgrade ${where}: ${what} changed; identity resynced, redefined${state === 'running' ? ', stopped and restarted' : ''}`, { base: { from, to }, identity: drift.identity, changes: drift.changes })
}

async function planMachine(ctx: FleetContext, host: Host, m: Machine): Promise<PlanEntry> {
  const remote = remoteHost(m)
  if (remote) return planRemote(ctx, host, m, remote)
  const files = vmFiles(ctx.paths, m.name)
  const dom = host.domains.get(m.name)
  const state = dom?.state ?? 'not defined'
  const hasBoot = existsSync(files.boot)
  const hasVar = existsSync(files.var)
  const read = dom ? readDomain(dom.xml) : undefined
  if (dom && read) {
    const owner = read.owner
    const ownerKind = ownerOf(owner, [])
    const disks = read.model.devices.disks.map((d) => d.source)
    const ownDisks = disks.length > 0 && disks.every((d) => d === files.boot || d === files.var)
    const problem = ownershipProblem(m.name, host.ours, { ...ownerKind, disks }, ownDisks)
    if (problem) return entry(m.name, 'foreign', state, `${problem}; never touched (pick another machine name, or adopt it with \`fleet define-vm ${m.name} --adopt\`)`)
  }
  if (!dom && !hasBoot) return entry(m.name, 'create', state, hasVar ? `create (reusing the kept /var disk ${files.var}; identity resynced)` : 'create: boot overlay, /var disk with identity, define')
  if (!hasBoot || !hasVar) {
    return entry(m.name, 'broken', state, `domain ${m.name} is defined but ${[hasBoot ? '' : files.boot, hasVar ? '' : files.var].filter(Boolean).join(' and ')} missing; apply leaves it alone`)
  }
  const key = channelKey(m.base, m.arch)
  const channel = host.channels[key]
  if (!channel) return entry(m.name, 'broken', state, `base channel "${m.base}" has no ${m.arch} image in ${ctx.paths.images}`)
  const backing = await overlayBackingFile(files.boot)
  const from = backing ? digestOfPath(ctx.paths, backing) : undefined
  if (!from) return entry(m.name, 'broken', state, `${files.boot} is backed by ${backing ?? 'nothing'}, not an image of this store`)
  if (!existsSync(imagePath(ctx.paths, from))) return entry(m.name, 'broken', state, `${files.boot} is backed by ${imagePath(ctx.paths, from)}, which is missing`)
  const written = await readManifest(files.dir)
  const now = await readIdentityFiles(m)
  const want = manifestOf(now.files)
  // An encrypted secret (the host private key) is not decrypted to plan: its .pub, compared like
  // any file, changes with it, so what fleet wrote for it stands.
  for (const f of now.encrypted) if (written?.[f]) want[f] = written[f]
  const identity = diffManifest(written, want)
  const base = { from, to: channel.digest }
  if (!dom) return entry(m.name, 'define', state, 'disks are there, the domain is not: define it from machines/', { base, identity })
  // Drift of the definition against the base the VM is on now; an upgrade moves the base itself.
  const desired = await machineDomain(ctx, m, from)
  const changes = diffDomain(desired, read!.model)
  if (dom.liveXml) {
    // A running domain keeps its old configuration until restarted, even once redefined.
    for (const c of diffDomain(desired, parseDomainModel(dom.liveXml))) {
      if (c.apply === 'restart' && !changes.some((x) => x.field === c.field)) changes.push({ ...c, from: `${c.from} (running)` })
    }
  }
  const running = Boolean(dom.liveXml)
  const needsRestart = running && changes.some((c) => c.apply === 'restart')
  const more = { changes, needsRestart, base, identity }
  if (base.from !== base.to || identityChanged(identity)) {
    const why = [base.from !== base.to ? `base ${from.slice(0, 12)} → ${channel.digest.slice(0, 12)}` : '', identityChanged(identity) ? 'identity changed' : ''].filter(Boolean).join(', ')
    return entry(m.name, 'upgrade', state, `upgrade (${why})${running ? '; stopped and restarted' : ''}`, more)
  }
  if (changes.length) {
    const restart = changes.some((c) => c.apply === 'restart')
    const detail = !restart ? 'redefine; applied live, nothing restarted' : running ? 'redefine; needs a restart (apply restarts it gracefully unless --no-restart)' : 'redefine; takes effect at the next start'
    return entry(m.name, 'redefine', state, detail, { ...more, needsRestart: restart })
  }
  return entry(m.name, 'in-sync', state, 'in sync', more)
}

/** This fleet's domains and vms/ folders that no machines/ folder defines. */
async function orphans(ctx: FleetContext, host: Host, known: Set<string>): Promise<PlanEntry[]> {
  const out: PlanEntry[] = []
  const seen = new Set<string>()
  for (const d of host.domains.values()) {
    // Only a domain whose XML carries our id can be ours: the others are not parsed at all.
    if (known.has(d.name) || !isVmName(d.name) || !host.ours || !d.xml.includes(host.ours)) continue
    const owner = readDomain(d.xml).owner
    if (!host.ours || owner?.fleetId !== host.ours) continue
    seen.add(d.name)
    out.push(entry(d.name, 'orphan', d.state, `domain of this fleet with no ${ctx.paths.machines}/${d.name}: apply (after asking) powers it off, undefines it and deletes its boot overlay; its /var disk is kept`))
  }
  const dirs = existsSync(ctx.paths.vms) ? await readdir(ctx.paths.vms, { withFileTypes: true }) : []
  for (const e of dirs) {
    if (!e.isDirectory() || known.has(e.name) || seen.has(e.name) || !isVmName(e.name)) continue
    const files = vmFiles(ctx.paths, e.name)
    const removable = [files.boot, `${files.boot}.previous`, files.nvram].filter(existsSync)
    if (removable.length) out.push(entry(e.name, 'orphan', 'not defined', `disks with no definition: apply (after asking) deletes ${removable.join(', ')}; ${existsSync(files.var) ? `${files.var} is kept` : 'no /var disk'}`))
    else if (existsSync(files.var)) out.push(entry(e.name, 'orphan', 'not defined', `a kept /var disk ${files.var} with no definition; fleet never deletes it (\`fleet destroy-vm ${e.name} --delete-data\` does)`, { pending: false }))
  }
  return out
}
