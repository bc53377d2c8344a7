// What `fleet secrets …` prints for people (the --json payload is the result itself).
import type { SecretsResult } from '../services/secrets.js'

export function renderSecrets(r: SecretsResult, what: string): string {
  const verb = r.dryRun ? 'Would write' : 'Wrote'
  return [
    `${what}${r.dryRun ? ' (dry run: nothing changed)' : ''}`,
    `  recipients (.fleet/recipients${r.recipientsChanged ? ', changed' : ''}):`,
    ...r.recipients.map((k) => `    ${k}`),
    ...(r.encrypted.length ? [`  ${verb} ${r.encrypted.length} encrypted file(s):`, ...r.encrypted.map((f) => `    ${f}`)] : ['  no machine secrets to write']),
    ...(r.removedPlaintext.length ? [`  ${r.dryRun ? 'Would remove' : 'Removed'} plaintext: ${r.removedPlaintext.join(', ')}`] : []),
    ...(r.gitignoreChanged ? ['  .gitignore: host key lines replaced'] : []),
    ...(r.dryRun ? [] : ['Commit the changes (git add -A && git commit) so the other admins get them.']),
  ].join('\n')
}
