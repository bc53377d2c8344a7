import { vmName } from '../name.js'
import * as Flags from '@oclif/core/flags'
import { readFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { BaseCommand } from '../base-command.js'
import { attachConsole } from '../adapters/libvirt.js'
import { UserError } from '../errors.js'
import { adopt, nameArg } from '../flags.js'
import { vmFiles } from '../repo.js'
import { assertName } from '../machines/repository.js'
import { assertOwned } from '../services/ownership.js'
import { assertRemoteOwned, remoteConsoleLog, remoteMachine } from '../services/remote-vm.js'

export default class Console extends BaseCommand<typeof Console> {
  static override summary = "Attach to a VM's serial console (virsh console), or print its console log with --log"
  static override examples = [
    '<%= config.bin %> console web1',
    '<%= config.bin %> console web1 --log --tail 50',
    '<%= config.bin %> console web1 --log --json',
  ]
  static override args = { name: nameArg }
  static override flags = {
    log: Flags.boolean({ description: 'Print vms/NAME/console.log instead of attaching' }),
    tail: Flags.integer({ description: 'With --log: only the last N lines' }),
    adopt,
  }

  async run(): Promise<{ name: string; log?: string }> {
    const name = vmName(this.args.name)
    // A VM on a remote host: its console log is read there, its console attached over its URI.
    const remote = await remoteMachine(this.paths(), name)
    if (this.flags.log) {
      const file = vmFiles(this.paths(), name).console
      const remoteText = remote ? await remoteConsoleLog(remote) : undefined
      if (remote ? remoteText === undefined : !existsSync(file)) throw new UserError(`machine ${name}: no console log yet${remote ? ` on ${remote.host}` : ` at ${file}`}`, `Start it: fleet start-vm ${name}`)
      let text = remoteText ?? await readFile(file, 'utf8')
      if (this.flags.tail) text = text.split('\n').slice(-this.flags.tail - 1).join('\n')
      if (!this.jsonEnabled()) process.stdout.write(text)
      return { name, log: text }
    }
    if (this.jsonEnabled()) throw new UserError('--json needs --log: an attached console is interactive')
    // A domain of its name that is not this fleet's (here or on its host) is not attached to, unless --adopt.
    const ctx = { paths: this.paths(), adopt: this.flags.adopt, log: this.progress }
    await (remote ? assertRemoteOwned(ctx, remote) : assertOwned(ctx.paths, name, ctx))
    if (!process.stdin.isTTY) throw new UserError(`machine ${name}: attaching to the console needs a terminal`, `Use \`fleet console ${name} --log\` to print the log.`)
    this.progress('Attached to the serial console; leave with Ctrl-]')
    process.exitCode = await attachConsole(name, remote?.host)
    return { name }
  }
}
