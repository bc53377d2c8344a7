// Step timings for build reports: seconds with one decimal, keyed by step name.
export async function timed<T>(into: Record<string, number>, step: string, work: () => Promise<T>): Promise<T> {
  const t0 = performance.now()
  try {
    return await work()
  } finally {
    into[step] = Math.round((performance.now() - t0) / 100) / 10
  }
}
