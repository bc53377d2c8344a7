// fleet secrets: who can decrypt the machines' secret identity files, and moving a repository
// with plaintext host keys to encrypted ones.
//
// Every machine secret is first decrypted (or read) in memory; only if all of them succeed is
// anything written, so a key that cannot be decrypted stops the command with nothing changed.
// Each FILE.age is then replaced atomically (temp file, fsync, rename), one at a time under the
// machine's lock: a kill leaves every machine with its old or its new FILE.age, never neither.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../errors.js'
import { listMachineNames, loadMachine } from '../machines/repository.js'
import type { VmName } from '../name.js'
import { withVms } from '../ops/vm-op.js'
import { adminRecipient } from '../secrets/admin-key.js'
import { updateGitignore } from '../secrets/gitignore.js'
import { decryptSecret, encryptedName, encryptSecret, SECRET_FILES, secretForm } from '../secrets/machine-secrets.js'
import { describeRecipient, parseRecipient, readRecipients, recipientsFile, writeRecipients, type Recipient } from '../secrets/recipients.js'
import { DataFileRefused, readDataFile } from '../util/data-file.js'
import { fsyncDir, unlinkDurable, writeFileAtomic } from '../util/fsx.js'
import { step } from '../util/interrupt.js'
import type { FleetContext } from './context.js'

export interface SecretsResult {
  recipients: string[]
  /** machines/NAME/FILE.age written (re-encrypted or new). */
  encrypted: string[]
  /** Plaintext files removed from the repository folder (migrate). */
  removedPlaintext: string[]
  recipientsChanged: boolean
  gitignoreChanged: boolean
  dryRun: boolean
}

interface Secret {
  machine: VmName
  dir: string
  file: string
  plaintext: Buffer
  wasPlaintext: boolean
}

async function readBytes(machine: string, file: string): Promise<Buffer> {
  try {
    const b = await readDataFile(file)
    if (!b) throw new UserError(`machine ${machine}: ${file} disappeared while being read`)
    return b
  } catch (e) {
    if (!(e instanceof DataFileRefused)) throw e
    throw new UserError(`machine ${machine}: ${e.message}`, `Restore ${file} from git.`, { cause: e })
  }
}

/** Every secret of every machine, in memory: .age decrypted, plaintext (allowed only for migrate) read. */
async function collect(ctx: FleetContext, known: readonly Recipient[], allowPlaintext: boolean): Promise<Secret[]> {
  const out: Secret[] = []
  for (const name of await listMachineNames(ctx.paths)) {
    const m = await loadMachine(ctx.paths, name)
    for (const file of SECRET_FILES) {
      const form = secretForm(m.dir, file)
      if (form === 'missing') continue
      if (form === 'plaintext' && !allowPlaintext) {
        throw new UserError(`machine ${name}: ${join(m.dir, file)} is a plaintext private key`, 'Encrypt it first: fleet secrets migrate')
      }
      const path = join(m.dir, form === 'encrypted' ? encryptedName(file) : file)
      const bytes = await readBytes(name, path)
      const plaintext = form === 'encrypted' ? await decryptSecret(name, m.dir, file, bytes, ctx.keyring, known) : bytes
      out.push({ machine: m.name, dir: m.dir, file, plaintext, wasPlaintext: form === 'plaintext' })
    }
  }
  return out
}

/** Writes each secret encrypted to `recipients`, atomically, under its machine's lock; removes plaintext copies. */
async function writeAll(ctx: FleetContext, secrets: Secret[], recipients: readonly Recipient[], result: SecretsResult): Promise<void> {
  const names = [...new Set(secrets.map((s) => s.machine))]
  if (!names.length) return
  await withVms(ctx, names, async () => {
    for (const s of secrets) {
      step('secrets:encrypt')
      const target = join(s.dir, encryptedName(s.file))
      await writeFileAtomic(target, await encryptSecret(s.plaintext, recipients))
      result.encrypted.push(target)
      // The .age is durable before the plaintext goes: a kill in between leaves both, and the .age wins.
      const plain = join(s.dir, s.file)
      if (existsSync(plain)) {
        await unlinkDurable(plain)
        result.removedPlaintext.push(plain)
      }
    }
  })
}

function emptyResult(ctx: FleetContext, recipients: readonly Recipient[]): SecretsResult {
  return { recipients: recipients.map((r) => r.line), encrypted: [], removedPlaintext: [], recipientsChanged: false, gitignoreChanged: false, dryRun: ctx.dryRun }
}

async function requireRecipients(ctx: FleetContext): Promise<Recipient[]> {
  const list = await readRecipients(ctx.paths)
  if (!list) throw new UserError(`${recipientsFile(ctx.paths)} does not exist, so this repository's host keys are not encrypted yet`, 'Run `fleet secrets migrate` first.')
  return list
}

/** Re-encrypts every machine secret to the current .fleet/recipients. */
export async function rekey(ctx: FleetContext): Promise<SecretsResult> {
  const recipients = await requireRecipients(ctx)
  const result = emptyResult(ctx, recipients)
  const secrets = await collect(ctx, recipients, false)
  if (ctx.dryRun) {
    result.encrypted = secrets.map((s) => join(s.dir, encryptedName(s.file)))
    return result
  }
  await writeAll(ctx, secrets, recipients, result)
  return result
}

/** Adds KEY to .fleet/recipients, then re-encrypts every secret (so the new admin can decrypt them). */
export async function addAdmin(ctx: FleetContext, keyText: string): Promise<SecretsResult> {
  const key = parseRecipient(keyText)
  if (typeof key === 'string') throw new UserError(`admin key ${key}`, 'Pass an age recipient (age1…) or an SSH public key line (ssh-ed25519 AAAA… comment), or a .pub file.')
  const recipients = await requireRecipients(ctx)
  // Decrypted with the old list first: if that fails, nothing is written.
  const secrets = await collect(ctx, recipients, false)
  const next = recipients.some((r) => r.key === key.key) ? recipients : [...recipients, key]
  const result = { ...emptyResult(ctx, next), recipientsChanged: next !== recipients }
  if (ctx.dryRun) return { ...result, encrypted: secrets.map((s) => join(s.dir, encryptedName(s.file))) }
  // The list first: a kill before the files are rewritten is finished by `fleet secrets rekey`.
  if (result.recipientsChanged) await writeRecipients(ctx.paths, next)
  await writeAll(ctx, secrets, next, result)
  return result
}

/** Removes KEY (the key or its comment) from .fleet/recipients and re-encrypts every secret without it. */
export async function removeAdmin(ctx: FleetContext, keyText: string): Promise<SecretsResult> {
  const recipients = await requireRecipients(ctx)
  const parsed = parseRecipient(keyText)
  const match = recipients.filter((r) => (typeof parsed === 'string' ? r.line.slice(r.key.length).trim() === keyText.trim() : r.key === parsed.key))
  if (!match.length) {
    throw new UserError(`admin key "${keyText.length > 60 ? keyText.slice(0, 60) + '…' : keyText}" is not in ${recipientsFile(ctx.paths)}`, `The admins are: ${recipients.map(describeRecipient).join(', ') || 'none'}.`)
  }
  const next = recipients.filter((r) => !match.includes(r))
  if (!next.length) throw new UserError(`removing ${match.map(describeRecipient).join(', ')} would leave nobody able to decrypt the machine secrets; nothing was changed`, 'Add the next admin first: fleet secrets add-admin KEY')
  const secrets = await collect(ctx, recipients, false)
  const result = { ...emptyResult(ctx, next), recipientsChanged: true }
  if (ctx.dryRun) return { ...result, encrypted: secrets.map((s) => join(s.dir, encryptedName(s.file))) }
  await writeRecipients(ctx.paths, next)
  await writeAll(ctx, secrets, next, result)
  return result
}

/**
 * A repository with plaintext host keys (ignored by git) to encrypted ones: .fleet/recipients made
 * with the admin's key if missing, every plaintext key written as FILE.age and then removed, and
 * the .gitignore comment replaced. Run again after a kill, it finishes.
 */
export async function migrate(ctx: FleetContext): Promise<SecretsResult> {
  let recipients = await readRecipients(ctx.paths)
  let recipientsChanged = false
  if (!recipients) {
    if (ctx.dryRun) recipients = []
    else {
      const me = await adminRecipient(ctx.keyring, ctx.log)
      recipients = [me.recipient]
      await writeRecipients(ctx.paths, recipients)
      await fsyncDir(ctx.paths.repo)
    }
    recipientsChanged = true
  }
  // Also a plaintext copy a killed migrate left beside its .age.
  const secrets = (await collect(ctx, recipients, true)).filter((s) => s.wasPlaintext || existsSync(join(s.dir, s.file)))
  const result = { ...emptyResult(ctx, recipients), recipientsChanged }
  if (ctx.dryRun) return { ...result, encrypted: secrets.map((s) => join(s.dir, encryptedName(s.file))), removedPlaintext: secrets.map((s) => join(s.dir, s.file)) }
  await writeAll(ctx, secrets, recipients, result)
  result.gitignoreChanged = await updateGitignore(ctx.paths.repo)
  return result
}
