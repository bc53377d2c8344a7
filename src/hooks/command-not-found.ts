// `fleet creat-vm`: name the closest command instead of a bare "not found"; exit 2 (a typo).
// Kept instead of @oclif/plugin-not-found: that plugin asks "did you mean …? (y/n)" and runs the
// guess on a terminal, exits 127 otherwise and has no --json form; fleet's rule is exit 2 for bad
// input, an error object under --json, and never running a command the user did not type.
import type { Hook } from '@oclif/core'

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
  }
  return d[a.length]![b.length]!
}

const hook: Hook<'command_not_found'> = async function (opts) {
  // oclif joins the words it could not place into the id: "creat-vm web1" → try one and two words.
  const words = opts.id.split(':')
  const ids = opts.config.commands.filter((c) => !c.hidden).map((c) => c.id.replaceAll(':', ' '))
  const tries = [words[0]!, words.slice(0, 2).join(' ')]
  const best = tries.flatMap((t) => ids.map((id) => ({ id, t, d: distance(t, id) }))).sort((x, y) => x.d - y.d)[0]
  const typed = best?.t ?? words[0]!
  const guess = best && best.d <= Math.max(2, Math.floor(typed.length / 3)) ? `Did you mean \`${opts.config.bin} ${best.id}\`? ` : ''
  const message = `"${guess ? typed : words[0]}" is not a fleet command. ${guess}`.trim()
  const hint = `\`${opts.config.bin} help\` lists them.`
  if (opts.argv?.includes('--json')) process.stdout.write(JSON.stringify({ error: { type: 'UsageError', code: 2, message, hint } }, null, 2) + '\n')
  else process.stderr.write(`Error: ${message} ${hint}\n`)
  // oclif's exit (not process.exit): the CLI ends with 2, and in-process tests see the code.
  this.exit(2)
}

export default hook
