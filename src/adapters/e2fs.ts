// qcow2 /var disks written without an appliance: qemu-storage-daemon exports each image as a raw
// file through FUSE (no kernel module but fuse, no loop or nbd device), e2fsprogs read and write
// the ext4 inside it from userspace.
import { randomUUID } from 'node:crypto'
import { access, constants, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ToolError } from '../errors.js'
import { words } from '../util/env.js'
import { interrupted, interruptedError } from '../util/interrupt.js'
import { startSession, tryRun, which, type Session } from './exec.js'
import { QmpClient } from './qmp.js'

const qsd = (): string[] => words(process.env.QEMU_STORAGE_DAEMON || 'qemu-storage-daemon')
const debugfs = (): string[] => words(process.env.DEBUGFS || 'debugfs')

/**
 * Why this host cannot use the appliance-free path, or undefined if it can: /dev/fuse and the
 * tools must be there (e2fsprogs, qemu-storage-daemon, stdbuf, bash).
 */
export async function unavailable(): Promise<string | undefined> {
  try {
    await access('/dev/fuse', constants.R_OK | constants.W_OK)
  } catch {
    return '/dev/fuse is missing'
  }
  for (const tool of [qsd()[0]!, debugfs()[0]!, 'e2fsck', 'blkid', 'stdbuf', 'bash']) {
    if (!(await which(tool))) return `${tool} is not installed`
  }
  return undefined
}

/** Filesystem type and label of an exported image, as blkid (and so guestfish's vfs-type) sees them; '' when none. */
export async function probe(image: string): Promise<{ type: string; label: string }> {
  const r = await tryRun(['blkid'], ['-p', '-o', 'export', image], { privileged: true })
  if (r.exitCode === 2) return { type: '', label: '' } // nothing recognised
  if (r.exitCode !== 0) throw new ToolError('blkid', ['-p', '-o', 'export', image], r.exitCode, r.stderr || r.stdout)
  const field = (k: string): string => new RegExp(`^${k}=(.*)$`, 'm').exec(r.stdout)?.[1] ?? ''
  return { type: field('TYPE'), label: field('LABEL').replace(/\\(.)/g, '$1') }
}

/**
 * `e2fsck -f -p`: replays the journal and repairs what is safe. 'clean' (exit 0–2), 'errors'
 * (4: errors left that need a human), or 'unusable' (8 and above: e.g. a feature this e2fsprogs
 * does not know; the appliance may still handle it) with e2fsck's words.
 */
export async function e2fsck(image: string): Promise<{ result: 'clean' | 'errors' | 'unusable'; output: string }> {
  // Never cut short by Ctrl-C: a repair runs to its end (fleet stops at the next step instead).
  const r = await tryRun(['e2fsck'], ['-f', '-p', image], { privileged: true, uncancellable: true })
  const output = (r.stdout + r.stderr).trim()
  if (r.exitCode <= 2) return { result: 'clean', output }
  return { result: r.exitCode === 4 ? 'errors' : 'unusable', output }
}

/** One debugfs command as words (quoted when sent); built by `debugfsCmd`. */
export type DebugfsCommand = string[]

/** debugfs commands for a filesystem opened with E2fsSession.open(i). */
export const debugfsCmd = {
  /** Closes the open filesystem: every change written, then flushed through the export. */
  close: (): DebugfsCommand => ['close'],
  mkdir: (path: string): DebugfsCommand => ['mkdir', path],
  /** Copies a local file into the filesystem as `path`. */
  put: (local: string, path: string): DebugfsCommand => ['write', local, path],
  /** Mode (type bits included), owner and group of `path`. */
  attrs: (path: string, mode: number, uid: number, gid: number): DebugfsCommand[] => [
    ['sif', path, 'mode', `0${mode.toString(8)}`], ['sif', path, 'uid', String(uid)], ['sif', path, 'gid', String(gid)],
  ],
  /**
   * A rename within one folder: `ln` adds the new name and `unlink` drops the old (link counts
   * stay right), both in the folder's directory block, which the next close writes at once.
   */
  rename: (from: string, to: string): DebugfsCommand[] => [['ln', from, to], ['unlink', from]],
  rm: (path: string): DebugfsCommand => ['rm', path],
  rmdir: (path: string): DebugfsCommand => ['rmdir', path],
}

/** One entry of a folder: name, inode, and whether it is a folder. */
export interface DirEntry {
  name: string
  inode: number
  dir: boolean
}

// The supervisor: qemu-storage-daemon in the background, ready once its pid file exists, then
// debugfs reading commands from our stdin (line-buffered, errors in the same stream). debugfs
// ends when our stdin closes (fleet finished or died) after the commands it was sent, closing
// the filesystem it has open. Then each export is unmounted as soon as no process (an e2fsck
// fleet started) has it open — the daemon never goes away under a writer — and the daemon is
// stopped with SIGTERM, which flushes. Its exit status is the session's (debugfs counts our
// markers as failed commands, so its own says nothing). Exports a crashed daemon left behind are
// unmounted. A fixed script: every path arrives as an argument, nothing is spliced into it.
const SUPERVISOR = `set -u
# Ignored here, so in debugfs and the daemon too: once fleet is gone, their output fails with EPIPE
# instead of killing them in the middle of the commands they were sent.
trap '' PIPE
n=$1; shift; q=("\${@:1:$n}"); shift "$n"
pidfile=$1; shift
owner=$1; sock=$2; shift 2
m=$1; shift; mounts=("\${@:1:$m}"); shift "$m"; all=("\${mounts[@]}")
"\${q[@]}" --pidfile "$pidfile" </dev/null >&2 &
qsd=$!
until [ -s "$pidfile" ]; do
  if ! kill -0 "$qsd" 2>/dev/null; then wait "$qsd"; exit 90; fi
  sleep 0.005
done
# The monitor socket (made before the pid file) is fleet's to connect to when fleet is not root.
if [ -n "$owner" ]; then chown "$owner" "$sock" 2>/dev/null; fi
echo fleet-exports-ready
stdbuf -oL "$@" -f - 2>&1
until umount "\${mounts[@]}" 2>/dev/null || ! kill -0 "$qsd" 2>/dev/null; do
  sleep 0.05
  # Retry only those still mounted (umount may have taken some of them).
  left=(); for f in "\${mounts[@]}"; do if mountpoint -q "$f"; then left+=("$f"); fi; done
  [ \${#left[@]} -eq 0 ] && break
  mounts=("\${left[@]}")
done
kill -TERM "$qsd" 2>/dev/null
wait "$qsd"
rc=$?
# A dead daemon's mount fails even mountpoint's stat (ENOTCONN): unmount without asking, lazily
# if a process still has it open (it can only get errors from it now).
if [ "$rc" -ne 0 ]; then for f in "\${all[@]}"; do umount "$f" 2>/dev/null || umount -l "$f" 2>/dev/null; done; fi
exit "$rc"
`

/** Where a session in `dir` has the daemon listen for QMP; undefined when the path is too long for a socket address. */
export function monitorPath(dir: string): string | undefined {
  const p = join(dir, 'qmp.sock')
  return Buffer.byteLength(p) < 100 ? p : undefined
}

/** Refuses what debugfs's own quoting cannot carry (it splits on blanks, honours double quotes). */
function quote(arg: string): string {
  if (/["\0-\x1f\x7f]/.test(arg)) throw new Error(`debugfs argument with a quote or control character: ${JSON.stringify(arg)}`)
  return `"${arg}"`
}

/**
 * qcow2 images exported as raw files (`image(i)`) by one qemu-storage-daemon, which holds their
 * qemu write locks like a VM would (a running VM makes the export fail), plus one debugfs driven
 * a command at a time. If fleet dies, debugfs reads EOF after the command in flight, closes the
 * filesystem it has open (everything written), and the daemon stops.
 */
export class E2fsSession {
  private readonly marker = `fleet-mark-${randomUUID()}`
  private dead: ToolError | undefined
  private qmp: Promise<QmpClient> | undefined

  private constructor(private readonly session: Session, private readonly images: string[], private readonly argv: string[], private readonly socket?: string) {}

  /**
   * Exports `files` (qcow2) as `dir`/0.img, 1.img…, and starts debugfs with no filesystem open.
   * `monitor`: the daemon also listens for QMP on monitorPath(dir) (which must fit a socket address).
   */
  static async open(files: string[], dir: string, opts: { monitor?: boolean } = {}): Promise<E2fsSession> {
    const images = files.map((_, i) => join(dir, `${i}.img`))
    for (const m of images) await writeFile(m, '', { mode: 0o600 })
    // Ready means the daemon wrote its pid file: none may be left from an earlier session here.
    await rm(join(dir, 'qsd.pid'), { force: true })
    const q = [...qsd()]
    const socket = opts.monitor ? monitorPath(dir) : undefined
    if (opts.monitor && !socket) throw new Error(`monitor socket path under ${dir} is too long`)
    if (socket) {
      await rm(socket, { force: true })
      q.push('--chardev', `socket,id=fleet-qmp,path=${socket.replaceAll(',', ',,')},server=on,wait=off`, '--monitor', 'chardev=fleet-qmp')
    }
    const me = process.getuid?.() ?? 0
    for (const [i, file] of files.entries()) {
      q.push('--blockdev', JSON.stringify({ driver: 'qcow2', 'node-name': `d${i}`, file: { driver: 'file', filename: file } }))
      // The export flushes on close and fsync, which debugfs issues when it closes a filesystem.
      q.push('--export', JSON.stringify({ type: 'fuse', id: `e${i}`, 'node-name': `d${i}`, mountpoint: images[i], writable: true, 'allow-other': 'off' }))
    }
    const owner = socket && me !== 0 ? `${me}:${process.getgid?.() ?? me}` : ''
    const argv = ['-c', SUPERVISOR, 'fleet-e2fs', String(q.length), ...q, join(dir, 'qsd.pid'), owner, socket ?? '', String(images.length), ...images, ...debugfs()]
    const s = new E2fsSession(await startSession(['bash'], argv, { privileged: true }), images, argv, socket)
    const first = await s.session.nextLine()
    if (first !== 'fleet-exports-ready') {
      const r = await s.session.end()
      s.dead = new ToolError(qsd().join(' '), q, r.exitCode, r.error ?? s.session.stderr())
      throw s.dead
    }
    // debugfs greets with its version line; the first marker swallows it.
    await s.call()
    return s
  }

  image(i: number): string {
    return this.images[i]!
  }

  /** The daemon's name for image i (its block node). */
  node(i: number): string {
    return `d${i}`
  }

  /** The daemon's monitor (connected on first use); only for a session opened with `monitor`. */
  monitor(): Promise<QmpClient> {
    if (!this.socket) throw new Error('E2fsSession: opened without a monitor')
    this.qmp ??= QmpClient.open(this.socket)
    return this.qmp
  }

  /** Sends commands in one write; resolves with their output lines (debugfs's echo of them removed). */
  private async call(...lines: string[]): Promise<string[]> {
    if (this.dead) throw this.dead
    // Ctrl-C / SIGTERM: stop between two calls; close() then ends debugfs cleanly.
    if (interrupted()) throw interruptedError()
    this.session.send(lines.map((l) => `${l}\n`).join('') + `${this.marker}\n`)
    const echoes = new Set(lines.map((l) => `debugfs: ${l}`))
    const out: string[] = []
    for (;;) {
      const l = await this.session.nextLine()
      if (l === undefined) break
      if (l === `debugfs: ${this.marker}`) {
        // debugfs then says the marker is no command; that line is ours too.
        const next = await this.session.nextLine()
        if (next !== undefined && next.includes(this.marker)) return out.filter((o) => !echoes.has(o))
        break
      }
      out.push(l)
    }
    const r = await this.session.end()
    this.dead = new ToolError(debugfs().join(' '), lines, r.exitCode, r.error ?? (out.join('\n') + this.session.stderr()))
    throw this.dead
  }

  /**
   * Writing commands, sent in ONE write to debugfs's stdin: if fleet dies after sending, debugfs
   * still reads and runs all of them before it sees EOF (a swap is never half done). Any output
   * but the `expected` is an error (debugfs itself exits 0 regardless).
   */
  async batch(commands: DebugfsCommand[]): Promise<void> {
    const lines = commands.map((args) => args.map((a, i) => (i === 0 ? a : quote(a))).join(' '))
    // `write` names the inode it allocated; anything else is a complaint.
    const out = (await this.call(...lines)).filter((l) => l.trim() && !/^Allocated inode: \d+$/.test(l))
    if (out.length) throw new ToolError(debugfs().join(' '), lines, 0, out.join('\n'))
  }

  /** The command that opens image i read-write (nothing else may be open). */
  open = (i: number): DebugfsCommand => ['open', '-w', this.image(i)]

  /** The entries of folder `path` (without . and ..), or undefined if it does not exist. */
  async list(path: string): Promise<DirEntry[] | undefined> {
    const out = await this.call(`ls -p ${quote(path)}`)
    if (out.some((l) => /File not found by ext2_lookup|Ext2 inode is not a directory/.test(l))) return undefined
    const entries: DirEntry[] = []
    for (const l of out) {
      const m = /^\/(\d+)\/(\d+)\/\d+\/\d+\/(.*)\/\d*\/$/.exec(l)
      if (!m) {
        if (l.trim()) throw new ToolError(debugfs().join(' '), [`ls -p ${path}`], 0, `unexpected line: ${l}`)
        continue
      }
      if (m[3] === '.' || m[3] === '..' || m[1] === '0') continue
      entries.push({ name: m[3]!, inode: Number(m[1]), dir: (Number.parseInt(m[2]!, 8) & 0o170000) === 0o040000 })
    }
    return entries
  }

  /** Ends debugfs (EOF): it closes any open filesystem, then the daemon flushes and stops. */
  async close(): Promise<void> {
    const qmp = this.qmp
    this.qmp = undefined
    await qmp?.then((c) => c.close(), () => undefined)
    if (this.dead) return
    const r = await this.session.end()
    if (r.exitCode !== 0) throw new ToolError('bash', this.argv.slice(0, 1), r.exitCode, r.error ?? this.session.stderr())
  }
}
