// MAC addresses and UUIDs: random, unique in the fleet and on the libvirt host, generated once
// and stored in machine.json (so stable from then on).
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'

/**
 * A random MAC with QEMU's locally administered 52:54:00 prefix that is not in `taken` (the
 * fleet's and the host's MACs). Random rather than derived from the name, so the same name in
 * two fleets on one network gets two MACs. `random` is injectable for tests.
 */
export function allocateMac(taken: ReadonlySet<string>, random: (n: number) => Buffer = randomBytes): string {
  for (let i = 0; i < 1 << 16; i++) {
    const b = random(3)
    const mac = ['52', '54', '00', ...[b[0]!, b[1]!, b[2]!].map((x) => x.toString(16).padStart(2, '0'))].join(':')
    if (!taken.has(mac)) return mac
  }
  throw new Error('no free MAC address after 65536 random tries')
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

/** TCP ports in LISTEN state in the text of /proc/net/tcp or tcp6 (of this host or another). */
export function listeningIn(text: string): Set<number> {
  const ports = new Set<number>()
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/)
    if (cols[3] === '0A' && cols[1]?.includes(':')) ports.add(Number.parseInt(cols[1].split(':')[1]!, 16)) // 0A = LISTEN
  }
  return ports
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
    for (const p of listeningIn(text)) ports.add(p)
  }
  return ports
}
