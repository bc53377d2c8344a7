// A machine's libvirt host (machine.json "host"): a libvirt URI. Absent or empty is this host (the
// --connect / LIBVIRT_DEFAULT_URI connection); a qemu+ssh:// URI is a remote host whose disks fleet
// handles only through libvirt's storage API and commands run there over the same SSH login.
import { libvirtUri, type Env } from '../util/env.js'

export interface SshLogin {
  user?: string
  host: string
  port?: number
  /** ?keyfile= of the URI: the private key ssh uses. */
  keyfile?: string
  /** ?no_verify=1: the host key is not checked (tests on loopback). */
  noVerify: boolean
  /** ?known_hosts= of the URI. */
  knownHosts?: string
}

export interface VmHost {
  /** The URI every libvirt call for the VM uses. */
  uri: string
  /** Set for a remote host: how fleet reaches it over SSH (the login libvirt itself uses). */
  ssh?: SshLogin
}

const LOCAL_SCHEMES = new Set(['qemu', 'qemu+unix'])
const PARAMS = new Set(['keyfile', 'no_verify', 'known_hosts', 'no_tty', 'sshauth', 'command', 'socket', 'mode', 'proxy', 'name', 'netcat', 'known_hosts_verify'])

/** Why `uri` cannot be a machine's host ('' for this host, else a qemu+ssh:// URI), or undefined. */
export function checkHostUri(uri: string): string | undefined {
  if (uri === '') return undefined
  let u: URL
  try {
    u = new URL(uri)
  } catch {
    return `host "${uri}" is not a libvirt URI (e.g. qemu+ssh://admin@kvm2.example.org/system)`
  }
  const scheme = u.protocol.replace(/:$/, '')
  const path = u.pathname
  if (path !== '/system' && path !== '/session') return `host "${uri}" must end in /system or /session (a QEMU driver URI)`
  // This host is no URI at all: every command's --connect / LIBVIRT_DEFAULT_URI picks its daemon.
  if (LOCAL_SCHEMES.has(scheme)) return u.hostname ? `host "${uri}": ${scheme}:// has no host name; use qemu+ssh://HOST${path}` : `host "${uri}" is this host: leave host empty (--connect or LIBVIRT_DEFAULT_URI choose its daemon)`
  if (scheme !== 'qemu+ssh') return `host "${uri}": only qemu+ssh:// (a remote host) is supported, not ${scheme}:// (empty: this host)`
  if (!u.hostname) return `host "${uri}" names no host after qemu+ssh://`
  for (const k of u.searchParams.keys()) if (!PARAMS.has(k)) return `host "${uri}": unknown URI parameter "${k}"`
  const key = u.searchParams.get('keyfile')
  if (key !== null && !key.startsWith('/')) return `host "${uri}": keyfile must be an absolute path`
  return undefined
}

/** The host a machine with machine.json `host` (maybe absent) runs on. */
export function vmHost(host: string | undefined, env: Env = process.env): VmHost {
  if (!host) return { uri: libvirtUri(env) }
  const u = new URL(host)
  const q = u.searchParams
  return {
    uri: host,
    ssh: {
      ...(u.username ? { user: decodeURIComponent(u.username) } : {}),
      host: u.hostname,
      ...(u.port ? { port: Number(u.port) } : {}),
      ...(q.get('keyfile') ? { keyfile: q.get('keyfile')! } : {}),
      noVerify: q.get('no_verify') === '1',
      ...(q.get('known_hosts') ? { knownHosts: q.get('known_hosts')! } : {}),
    },
  }
}

export const isRemote = (h: VmHost): h is Required<VmHost> => h.ssh !== undefined

/** The host as people read it: user@host:port, or "local". */
export function hostLabel(h: VmHost): string {
  if (!h.ssh) return 'local'
  return `${h.ssh.user ? `${h.ssh.user}@` : ''}${h.ssh.host}${h.ssh.port ? `:${h.ssh.port}` : ''}${new URL(h.uri).pathname}`
}
