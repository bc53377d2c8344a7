// A remote VM's /var disk (a raw volume in fleet's pool on its host), made and given its identity
// by e2fsprogs run ON that host: the identity travels as a tar on ssh's stdin into a 0700 folder
// there that the script removes on every exit. The scripts are fixed text; the volume path and
// sizes arrive as arguments (quoted by remote-shell.ts), never spliced into them.
import { runOn } from '../adapters/remote-shell.js'
import { debugfsCmd } from '../adapters/e2fs.js'
import type { SshLogin } from '../hosts/host-uri.js'
import { identityMode } from '../machines/model.js'
import { ustar, type TarEntry } from './ustar.js'
import { NEW, VAR_LABEL } from './var-disk-rules.js'

const PRELUDE = `set -eu
PATH=$PATH:/usr/sbin:/sbin
umask 077
d=$(mktemp -d "\${TMPDIR:-/tmp}/fleet-var.XXXXXX")
trap 'rm -rf "$d"' EXIT
tar -x -p -f - -C "$d"
cd "$d"
`

// $1 volume path, $2 size in KiB, $3 label. mkfs.ext4 -d fills it from root/; owners.cmds sets 0:0
// on everything (an unprivileged login's tar keeps its own uid).
const CREATE = `${PRELUDE}mkfs.ext4 -q -F -L "$3" -E root_owner=0:0 -d root "$1" "$2"k
debugfs -w -f owners.cmds "$1" >/dev/null 2>&1
`

// $1 volume path, $2 the label it must have. The same swap as var-identity-e2fs.ts: /identity.new
// written complete and closed, then both renames in one debugfs batch (one directory block), so a
// kill between batches leaves a complete identity and the next run converges.
// A kill IN a batch (debugfs writes without the ext4 journal) can leave a filesystem e2fsck -p will
// not repair. So every batch records the old content of each block it overwrites in an e2fsprogs
// undo file (debugfs -z) under $U, on the host, beside nothing of the guest's; the run removes $U
// only when it is done. The next run finds what a killed one left and puts the blocks back with
// e2undo (newest first) before anything else, which returns the filesystem to where that run
// started (old identity, complete) — but only if the guest has not mounted it since (its ext4
// last-mount time and mount count, recorded in $U before the first batch, unchanged): data the
// guest wrote is never undone; then the undo files are stale and only removed. A batch that fails
// while the script lives (debugfs killed or crashed, the host's disk full), or one whose files do
// not read back whole (debugfs exits 0 when /var itself is full), is undone at once, so
// the run ends with the filesystem as it began and the VM fleet may start next never mounts a
// half-written one. e2fsck -p's own repairs are not undone.
const RESYNC = `${PRELUDE}[ "$(e2label "$1" 2>/dev/null)" = "$2" ] || { echo "$1 is not an ext4 filesystem labelled $2" >&2; exit 71; }
U="\${XDG_STATE_HOME:-$HOME/.local/state}/fleet/undo/$(printf %s "$1" | sha256sum | cut -c1-32)"
mounted() { dumpe2fs -h "$1" 2>/dev/null | sed -n 's/^Last mount time: *//p; s/^Mount count: *//p' | tr '\n' ' '; }
undo() { for f in $(ls -r "$U" | grep '[.]e2undo$'); do e2undo "$U/$f" "$1" >/dev/null 2>&1 || break; done; }
if [ -d "$U" ]; then
  if [ -f "$U/mounted" ] && [ "$(mounted "$1")" = "$(cat "$U/mounted")" ]; then
    undo "$1"
    echo "undid the blocks an interrupted identity sync had written on $1" >&2
  else
    echo "the guest mounted $1 since an interrupted identity sync: its undo files are stale, removed" >&2
  fi
  rm -rf "$U"
fi
rc=0; e2fsck -f -p "$1" >e2fsck.out 2>&1 || rc=$?
if [ "$rc" -gt 2 ]; then cat e2fsck.out >&2; exit 70; fi
mkdir -p "$U"
mounted "$1" > "$U/mounted"
sync
names() { debugfs -R "ls -p $2" "$1" 2>/dev/null | sed -n 's#^/[0-9]*/[0-7]*/[0-9]*/[0-9]*/\\([^/]*\\)/.*#\\1#p' | grep -vx '[.]\\|[.][.]' || true; }
has() { names "$1" / | grep -qx "$2"; }
# Numbered from the files there: a batch runs in a pipeline's subshell.
# $1 volume, $2 exit code, $3 message: this run's batches undone, then the exit.
fail() { undo "$1"; rm -rf "$U"; echo "$3" >&2; exit "$2"; }
batch() { n=$(ls "$U" | grep -c '[.]e2undo$' || true); debugfs -w -z "$U/$((n + 1)).e2undo" -f - "$1" >/dev/null 2>&1 ||
  fail "$1" 73 "debugfs failed (exit $?) writing the identity on $1; the blocks it had written were put back"; }
rmtree() { for n2 in $(names "$1" "/$2"); do printf 'rm /%s/%s\\n' "$2" "$n2"; done; printf 'rmdir /%s\\n' "$2"; }
if ! has "$1" identity && has "$1" identity.old; then printf 'ln /identity.old /identity\\nunlink /identity.old\\n' | batch "$1"; fi
{ if has "$1" identity.old; then rmtree "$1" identity.old; fi; if has "$1" identity.new; then rmtree "$1" identity.new; fi; cat write.cmds; } | batch "$1"
has "$1" identity.new || fail "$1" 72 "debugfs did not write /identity.new on $1 (is its filesystem full?); the blocks written were put back"
# debugfs exits 0 when a command fails (a full /var: "Could not allocate block"): each file is read back.
for f in new/*; do
  [ -e "$f" ] || continue
  [ "$(debugfs -R "cat /identity.new/\${f#new/}" "$1" 2>/dev/null | sha256sum)" = "$(sha256sum < "$f")" ] && continue
  fail "$1" 74 "/identity.new/\${f#new/} could not be written whole on $1 (is its filesystem full?); the blocks written were put back"
done
{ if has "$1" identity; then printf 'ln /identity /identity.old\\nunlink /identity\\n'; fi; printf 'ln /identity.new /identity\\nunlink /identity.new\\n'; } | batch "$1"
if has "$1" identity.old; then rmtree "$1" identity.old | batch "$1"; fi
has "$1" identity
sync
rm -rf "$U"
`

const SKELETON = ['home', 'log', 'log/journal']

function checkNames(identity: Map<string, Buffer>): void {
  for (const name of identity.keys()) if (!/^[A-Za-z0-9._+-]+$/.test(name)) throw new Error(`identity file name ${JSON.stringify(name)}`)
}

const line = (words: string[]) => words.join(' ')

/** A new ext4 labelled `var` on the (empty) raw volume at `path`, with identity/, home/, log/journal/. */
export async function createRemoteVar(login: SshLogin, path: string, sizeBytes: number, identity: Map<string, Buffer>): Promise<void> {
  checkNames(identity)
  const entries: TarEntry[] = [{ name: 'root/', mode: 0o755 }, { name: 'root/identity/', mode: 0o755 }]
  for (const d of SKELETON) entries.push({ name: `root/${d}/`, mode: 0o755 })
  for (const [name, data] of identity) entries.push({ name: `root/identity/${name}`, mode: identityMode(name), data })
  const owned = ['/identity', ...SKELETON.map((d) => `/${d}`), ...[...identity.keys()].map((n) => `/identity/${n}`)]
  const owners = owned.flatMap((p) => [line(['sif', p, 'uid', '0']), line(['sif', p, 'gid', '0'])]).join('\n') + '\n'
  entries.push({ name: 'owners.cmds', mode: 0o600, data: Buffer.from(owners) })
  await runOn(login, ['sh', '-c', CREATE, 'sh', path, String(Math.floor(sizeBytes / 1024)), VAR_LABEL], { input: ustar(entries) })
}

/** Makes /identity on the /var volume at `path` exactly `identity` (the VM must be off). */
export async function resyncRemoteVar(login: SshLogin, path: string, identity: Map<string, Buffer>): Promise<void> {
  const job = resyncJob(path, identity)
  await runOn(login, job.argv, { input: job.input, uncancellable: true })
}

/** The host-side command of a resync (argv for a POSIX sh) and its stdin; tests run it locally. */
export function resyncJob(path: string, identity: Map<string, Buffer>): { argv: string[]; input: Buffer } {
  checkNames(identity)
  const entries: TarEntry[] = [{ name: 'new/', mode: 0o700 }]
  const { attrs, mkdir, put } = debugfsCmd
  const cmds = [mkdir(NEW), ...attrs(NEW, 0o040755, 0, 0)]
  for (const [name, data] of identity) {
    entries.push({ name: `new/${name}`, mode: 0o600, data })
    cmds.push(put(`new/${name}`, `${NEW}/${name}`), ...attrs(`${NEW}/${name}`, 0o100000 | identityMode(name), 0, 0))
  }
  entries.push({ name: 'write.cmds', mode: 0o600, data: Buffer.from(cmds.map(line).join('\n') + '\n') })
  return { argv: ['sh', '-c', RESYNC, 'sh', path, VAR_LABEL], input: ustar(entries) }
}
