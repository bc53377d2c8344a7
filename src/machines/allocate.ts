// MAC addresses and UUIDs: generated once, stored in machine.json (so stable), unique in the fleet.
import { createHash, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'

/** A 52:54:00 MAC derived from the name, stepping on collisions with `taken`. */
export function allocateMac(name: string, taken: ReadonlySet<string>): string {
  for (let i = 0; i < 1 << 16; i++) {
    const h = createHash('sha256').update(`${name}\0${i}`).digest()
    const mac = ['52', '54', '00', ...[h[0]!, h[1]!, h[2]!].map((b) => b.toString(16).padStart(2, '0'))].join(':')
    if (!taken.has(mac)) return mac
  }
  throw new Error(`no free MAC address for ${name}`)
}

export function allocateUuid(taken: ReadonlySet<string>): string {
  for (;;) {
    const u = randomUUID()
    if (!taken.has(u)) return u
  }
}

/** A free 127.0.0.1 port for a machine's SSH forward, from 2200 up. */
export function allocateSshPort(taken: ReadonlySet<number>): number {
  for (let p = 2200; p < 65535; p++) if (!taken.has(p)) return p
  throw new Error('no free SSH forward port')
}

/** TCP ports something on this host listens on (from /proc/net/tcp{,6}); empty where unreadable. */
export function listeningTcpPorts(): Set<number> {
  const ports = new Set<number>()
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try {
      text = readFileSync(f, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      if (cols[3] === '0A') ports.add(Number.parseInt(cols[1]!.split(':')[1]!, 16)) // 0A = LISTEN
    }
  }
  return ports
}
