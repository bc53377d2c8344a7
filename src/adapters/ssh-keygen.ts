// ssh-keygen: host key pairs and public key checks.
import { run, tryRun } from './exec.js'

const SSH_KEYGEN = ['ssh-keygen']

/** Writes an ed25519 key pair at `file` (+ .pub), private key 0600, comment `comment`. */
export async function generateHostKey(file: string, comment: string): Promise<void> {
  await run(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file])
}

/** Answers already given in this process: a fleet's machines mostly carry the same admin keys. */
const fingerprints = new Map<string, Promise<string | undefined>>()

/** The fingerprint line of a public key, or undefined if ssh-keygen cannot parse it. */
export async function fingerprint(publicKey: string): Promise<string | undefined> {
  const key = publicKey.trim()
  let known = fingerprints.get(key)
  if (!known) {
    // "-f -", not /dev/stdin: node feeds input through a socket, which /dev/stdin cannot open (ENXIO).
    known = tryRun(SSH_KEYGEN, ['-l', '-f', '-'], { input: key + '\n' }).then((r) => (r.exitCode === 0 ? r.stdout.trim() : undefined))
    fingerprints.set(key, known)
    known.catch(() => fingerprints.delete(key)) // a tool that could not run is asked again next time
  }
  return known
}
