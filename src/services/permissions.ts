// The permission model of the state directory. Other local users must not read a VM's disks
// (/var data, the SSH host private key) or its console log; qemu, which libvirt runs as its own
// user (libvirt-qemu on Debian), must still open them. So:
//   vms/ and vms/<name>/   owner root, group = qemu's group, mode 0710: only qemu may enter them
//   var.qcow2, boot.qcow2  0600: libvirt's DAC driver chowns them to qemu at start and back after
//   images/                0755 with images 0444: base images carry no identity (guest contract)
// Where fleet runs as the same user as qemu (qemu:///session), the folders are simply 0700.
import { readFileSync } from 'node:fs'
import { chmod, chown, mkdir, stat } from 'node:fs/promises'
import { dirname, join, parse, resolve, sep } from 'node:path'
import { qemuDacLabel, type DacLabel } from '../adapters/libvirt-host.js'
import { UserError } from '../errors.js'

/** Mode of a folder holding VM disks when qemu enters it through its group. */
export const VM_DIR_MODE = 0o710
/** Mode of a disk file holding VM data. */
export const VM_DISK_MODE = 0o600

/** Names and supplementary groups of a uid, from /etc/passwd and /etc/group (as libvirt's initgroups sees them). */
export function accountOf(uid: number, gid: number, files = { passwd: '/etc/passwd', group: '/etc/group' }): { user: string; groups: Set<number>; groupName: (g: number) => string } {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8').split('\n').map((l) => l.split(':'))
    } catch {
      return []
    }
  }
  const passwd = read(files.passwd)
  const group = read(files.group)
  const user = passwd.find((p) => Number(p[2]) === uid && p[0])?.[0] ?? `uid ${uid}`
  const groups = new Set([gid])
  for (const g of group) if (g[3]?.split(',').includes(user)) groups.add(Number(g[2]))
  const groupName = (n: number) => group.find((g) => Number(g[2]) === n)?.[0] ?? String(n)
  return { user, groups, groupName }
}

/** Every folder from / down to `dir`'s deepest existing ancestor (or `dir` itself). */
async function existingChain(dir: string): Promise<string[]> {
  let d = resolve(dir)
  while (!(await stat(d).catch(() => undefined))) d = dirname(d)
  const root = parse(d).root
  const parts = d.slice(root.length).split(sep).filter(Boolean)
  return [root, ...parts.map((_, i) => root + parts.slice(0, i + 1).join(sep))]
}

/** What `ls -ld` shows of a mode: drwx--x---. */
function modeString(mode: number): string {
  return 'd' + [6, 3, 0].map((s) => ((mode >> s) & 7)).map((b) => `${b & 4 ? 'r' : '-'}${b & 2 ? 'w' : '-'}${b & 1 ? 'x' : '-'}`).join('')
}

/**
 * Before anything is created: qemu's user must be able to enter every folder on the way to
 * `dirs` (the state directory's images/ and vms/), or a VM would only fail at start with
 * "Permission denied". Throws a UserError naming the folder and the fix. No DAC model, or
 * qemu running as root or as ourselves: nothing to check.
 */
export async function checkQemuCanReach(dirs: readonly string[], label?: DacLabel): Promise<void> {
  const dac = label ?? (await qemuDacLabel())
  if (!dac || dac.uid === 0 || dac.uid === process.getuid?.()) return
  const who = accountOf(dac.uid, dac.gid)
  for (const target of dirs) {
    for (const dir of await existingChain(target)) {
      const st = await stat(dir)
      const bit = st.uid === dac.uid ? 0o100 : who.groups.has(st.gid) ? 0o010 : 0o001
      if (st.mode & bit) continue
      const group = who.groupName(dac.gid)
      throw new UserError(
        `qemu runs as ${who.user} and cannot enter ${dir} (${modeString(st.mode)} ${st.uid}:${st.gid}), so it could not open the disks under ${target}`,
        `Let it through with \`chmod o+x ${dir}\` (or \`chgrp ${group} ${dir} && chmod g+x ${dir}\`), or use a state directory qemu can reach (--state-dir, FLEET_STATE_DIR).`)
    }
  }
}

/**
 * Makes (or fixes) a folder that holds VM disks so qemu can enter it and no other user can:
 * owner us, group qemu's, mode 0710. qemu running as root or as ourselves (session libvirt): 0700.
 * Not root and not in qemu's group: 0711 (others may pass but not list; the disks are 0600).
 */
export async function makeVmDir(dir: string, label?: DacLabel): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const dac = label ?? (await qemuDacLabel())
  const me = process.getuid?.()
  if (!dac || dac.uid === 0 || dac.uid === me) return chmod(dir, 0o700)
  try {
    await chown(dir, me ?? 0, dac.gid)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e
    return chmod(dir, 0o711)
  }
  await chmod(dir, VM_DIR_MODE)
}

/** vms/ and vms/<name>/ made private to root and qemu (see the model at the top). */
export async function makeVmDirs(vmsDir: string, name: string): Promise<string> {
  const label = await qemuDacLabel()
  await makeVmDir(vmsDir, label)
  const dir = join(vmsDir, name)
  await makeVmDir(dir, label)
  return dir
}
