// Reading and writing machines/<name>/ in the fleet repository.
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { UserError } from '../errors.js'
import { vmName } from '../name.js'
import type { Paths } from '../repo.js'
import { DataFileRefused, describePath, isRealDir, readDataFile } from '../util/data-file.js'
import { parseSize } from '../util/units.js'
import { Keyring } from '../secrets/identities.js'
import { decryptSecret, encryptedName, SECRET_FILES, secretForm } from '../secrets/machine-secrets.js'
import { readRecipients } from '../secrets/recipients.js'
import { IDENTITY_FILES, type Machine } from './model.js'
import { validateIdentity } from './spec-checks.js'
import { checkFleetUnique, checkName, checkText, validateMachineJson } from './validate.js'

export function machineDir(paths: Paths, name: string): string {
  return join(paths.machines, name)
}

export function assertName(name: string): void {
  const bad = checkName(name)
  if (bad) throw new UserError(`machine ${name}: ${bad}`, 'Pick a name that is a hostname label, e.g. web1 or db-2.')
}

/** Loads and validates machines/<name>/machine.json. */
export async function loadMachine(paths: Paths, name: string): Promise<Machine> {
  assertName(name)
  const dir = machineDir(paths, name)
  const file = join(dir, 'machine.json')
  if (existsSync(dir) && !(await isRealDir(dir))) {
    throw new UserError(`machine ${name}: ${dir} ${await describePath(dir)}`.replace(/regular file$/, 'real folder'), `Make ${dir} a folder of its own (not a link to one).`)
  }
  const bytes = await readMachineFile(name, file)
  if (!bytes) throw new UserError(`machine ${name}: ${file} does not exist`, `Create it with \`fleet create-vm ${name}\`.`)
  let raw: unknown
  try {
    const bad = checkText(bytes)
    if (bad) throw new Error(bad)
    raw = JSON.parse(bytes.toString('utf8'))
  } catch (e) {
    throw new UserError(`machine ${name}: ${file} is not valid JSON: ${(e as Error).message}`, `Edit ${file}, or restore it from git.`)
  }
  const json = validateMachineJson(name, file, raw)
  return { ...json, name: vmName(name), dir, memoryBytes: parseSize(json.memory)!, varSizeBytes: parseSize(json.varSize)! }
}

/** A file of machines/<name>/ as data: no symlinks, fifos or folders, at most 64 KiB; undefined if absent. */
async function readMachineFile(name: string, file: string): Promise<Buffer | undefined> {
  try {
    return await readDataFile(file)
  } catch (e) {
    if (!(e instanceof DataFileRefused)) throw e
    throw new UserError(`machine ${name}: ${e.message}`, `Replace ${file} with a plain file (restore it from git), or remove it if it is optional.`, { cause: e })
  }
}

/** Names of all machines (folders with a machine.json), sorted. */
export async function listMachineNames(paths: Paths): Promise<string[]> {
  if (!existsSync(paths.machines)) return []
  const entries = await readdir(paths.machines, { withFileTypes: true })
  return entries
    // .NAME.new-* are half-written definitions (a killed create-vm): never machines; recovery removes them.
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && existsSync(join(paths.machines, e.name, 'machine.json')))
    .map((e) => e.name)
    .sort()
}

/** Every machine, validated one by one and together (no shared MAC, UUID or SSH forward port). */
export async function loadAllMachines(paths: Paths): Promise<Machine[]> {
  const machines = await Promise.all((await listMachineNames(paths)).map((n) => loadMachine(paths, n)))
  checkFleetUnique(machines)
  return machines
}

/**
 * The identity files of machines/<name>/, with their bytes. A secret file kept as FILE.age is
 * decrypted in memory with the admin's identities (`keyring`); a plaintext one (a repository
 * not migrated yet) is read as it is. `known` holds secrets this run made itself (no need to decrypt).
 */
export async function readIdentity(machine: Machine, keyring: Keyring = new Keyring(), known: ReadonlyMap<string, Buffer> = new Map()): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  const repo = { repo: dirname(dirname(machine.dir)) }
  for (const f of IDENTITY_FILES) {
    if (SECRET_FILES.includes(f) && secretForm(machine.dir, f) === 'encrypted') {
      const ciphertext = (await readMachineFile(machine.name, join(machine.dir, encryptedName(f))))!
      // Known already (a secret this run just made): checked against the .pub below like any other.
      if (known.has(f)) files.set(f, known.get(f)!)
      else files.set(f, await decryptSecret(machine.name, machine.dir, f, ciphertext, keyring, (await readRecipients(repo)) ?? []))
      continue
    }
    const bytes = await readMachineFile(machine.name, join(machine.dir, f))
    if (bytes) files.set(f, bytes)
  }
  for (const required of ['machine-id', 'hostname', 'ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub']) {
    if (!files.has(required)) {
      const alt = SECRET_FILES.includes(required) ? ` (nor ${encryptedName(required)})` : ''
      throw new UserError(`machine ${machine.name}: identity file ${join(machine.dir, required)} is missing${alt}`, 'Restore it from git, or destroy and re-create the machine.')
    }
  }
  await validateIdentity(machine, files)
  return files
}

/**
 * The identity files' bytes (each read as data: no symlink, fifo or oversized file), without the
 * content checks readIdentity adds: `fleet plan` only compares their digests, and the operation
 * that writes them checks them first.
 */
export async function readIdentityFiles(machine: Pick<Machine, 'name' | 'dir'>): Promise<{ files: Map<string, Buffer>; encrypted: string[] }> {
  const files = new Map<string, Buffer>()
  // Secrets kept as FILE.age are not decrypted here (a process per VM): the caller is told which.
  const encrypted = SECRET_FILES.filter((f) => secretForm(machine.dir, f) === 'encrypted')
  for (const f of IDENTITY_FILES) {
    if (encrypted.includes(f)) continue
    const bytes = await readMachineFile(machine.name, join(machine.dir, f))
    if (bytes) files.set(f, bytes)
  }
  return { files, encrypted }
}
