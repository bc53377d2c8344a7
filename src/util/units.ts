// Sizes with units ("512M", "2G") as admins write them; stored in bytes.
const UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }

/** Parses "512M", "2G", "1.5G", "1024K", "2GiB"; returns bytes or undefined if malformed. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim())
  if (!m) return undefined
  const unit = UNITS[(m[2] ?? '').toUpperCase()]
  if (unit === undefined) return undefined
  const bytes = Math.round(Number(m[1]) * unit)
  return Number.isSafeInteger(bytes) ? bytes : undefined
}

/** Human size for listings: one decimal, binary units. */
export function humanSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = bytes
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`
}
