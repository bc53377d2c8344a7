import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { vmName } from '../name.js'
import { BaseCommand } from '../base-command.js'
import { sshInteractive } from '../adapters/ssh.js'
import { UserError } from '../errors.js'
import { assertName } from '../machines/repository.js'
import { sshTarget, waitForSsh } from '../services/ssh.js'

export default class Ssh extends BaseCommand<typeof Ssh> {
  static override summary = 'SSH into a VM as its admin user, with the host key checked against machines/NAME'
  static override description = `The host key is verified from the first connection on: fleet writes a known_hosts entry from machines/NAME/ssh_host_ed25519_key.pub (the key it installed on the VM's /var disk) and runs ssh with StrictHostKeyChecking=yes. A mismatch is refused, never learned.

Network "user" VMs are reached on 127.0.0.1 at their sshPort; VMs on a libvirt network at the address from its DHCP leases (or the guest agent). The exit code is the remote command's.`
  static override strict = false
  // An SSH session has no result to print as JSON.
  static override enableJsonFlag = false
  static override args = { name: Args.string({ description: 'Machine name', required: true }) }
  static override examples = [
    '<%= config.bin %> ssh web1',
    '<%= config.bin %> ssh web1 -- cat /etc/machine-id',
    '<%= config.bin %> ssh web1 --wait 120 -- systemctl is-system-running --wait',
    '<%= config.bin %> ssh web1 --user user -i ~/.ssh/id_ed25519',
  ]
  static override flags = {
    user: Flags.string({ char: 'l', description: 'Account to log in as (admin: wheel/sudo; user: plain)', default: 'admin' }),
    identity: Flags.string({ char: 'i', description: 'Private key file (default: fleet\'s own key pair when create-vm gave the VM that one, else your ssh agent and ~/.ssh keys)' }),
    wait: Flags.integer({ description: 'Wait up to this many seconds for the VM to accept SSH (after a start)', default: 0, min: 0 }),
  }

  async run(): Promise<void> {
    const { argv } = await this.parse(Ssh)
    const [given, ...rest] = argv as string[]
    if (!given) throw new UserError('missing machine name', 'fleet ssh NAME [-- COMMAND...]')
    const name = vmName(given)
    const command = rest[0] === '--' ? rest.slice(1) : rest
    const opts = { user: this.flags.user, identity: this.flags.identity, batch: !process.stdin.isTTY }
    const paths = this.paths()
    const target = this.flags.wait > 0 ? await waitForSsh(paths, name, opts, this.flags.wait, this.progress) : await sshTarget(paths, name, opts)
    process.exitCode = await sshInteractive(target, command)
  }
}
