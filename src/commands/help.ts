import { Args, Command, loadHelpClass } from '@oclif/core'

export default class Help extends Command {
  static override summary = 'Show help for fleet or for a command (same as COMMAND --help)'
  static override examples = ['<%= config.bin %> help create-vm', '<%= config.bin %> help image import']
  static override strict = false
  static override args = { command: Args.string({ description: 'Command (and subcommand) to explain' }) }

  async run(): Promise<void> {
    const { argv } = await this.parse(Help)
    const HelpClass = await loadHelpClass(this.config)
    await new HelpClass(this.config, this.config.pjson.oclif.helpOptions).showHelp(argv as string[])
  }
}
