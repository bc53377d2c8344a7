// npm run bench, part 0: start-up. `fleet --version` and `fleet list` beside `node -e 0`, and
// `fleet list` beside the same list work done by a bare node script (no oclif), so the ratio is
// what the CLI itself adds (target: at most 2× node's own start-up). CPU time is the steadier
// measure on a shared machine; wall time is printed beside it.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** CPU seconds (user + sys, from GNU time) and wall seconds of one run; the CPU time hardly moves when other work shares the machine. */
function cost(argv, env) {
  const t0 = performance.now()
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', ...argv], { env: { ...process.env, ...env }, encoding: 'utf8' })
  const wall = (performance.now() - t0) / 1000
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}\n${r.stderr}`)
  const [u, sy] = r.stderr.trim().split('\n').pop().split(' ').map(Number)
  return { cpu: u + sy, wall }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

async function startup() {
  const RUNS = Number(process.env.BENCH_RUNS ?? 11)
  const repo = new URL('..', import.meta.url).pathname // the repository root is an example fleet
  const env = { FLEET_REPO: repo, FLEET_STATE_DIR: mkdtempSync(join(tmpdir(), 'fleet-bench-state-')) }
  const bare = `import { listVms } from ${JSON.stringify(new URL('../dist/services/list.js', import.meta.url).href)}
import { disconnect } from ${JSON.stringify(new URL('../dist/adapters/libvirt.js', import.meta.url).href)}
import { resolvePaths } from ${JSON.stringify(new URL('../dist/repo.js', import.meta.url).href)}
process.stdout.write(JSON.stringify(await listVms(resolvePaths({}))) + '\\n'); await disconnect()`
  const cases = {
    'node -e 0': ['node', '-e', '0'],
    'fleet --version': ['node', new URL('../bin/fleet', import.meta.url).pathname, '--version'],
    'list work, bare node': ['node', '--input-type=module', '-e', bare],
    'fleet list': ['node', new URL('../bin/fleet', import.meta.url).pathname, 'list'],
  }
  const runs = Object.fromEntries(Object.keys(cases).map((k) => [k, []]))
  // Interleaved, so a busy moment hits every case alike.
  for (let i = 0; i < RUNS; i++) for (const [k, argv] of Object.entries(cases)) runs[k].push(cost(argv, env))
  const m = Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, { cpu: median(rs.map((r) => r.cpu)), wall: median(rs.map((r) => r.wall)) }]))
  for (const [k, v] of Object.entries(m)) console.log(`start-up: ${k.padEnd(22)} cpu ${(v.cpu * 1000).toFixed(0).padStart(5)} ms   wall ${(v.wall * 1000).toFixed(0).padStart(5)} ms`)
  const node = m['node -e 0']
  const work = { cpu: m['list work, bare node'].cpu - node.cpu, wall: m['list work, bare node'].wall - node.wall }
  const ratio = (x, y) => (x / y).toFixed(2)
  console.log(`start-up: fleet --version / node -e 0: cpu ${ratio(m['fleet --version'].cpu, node.cpu)}×, wall ${ratio(m['fleet --version'].wall, node.wall)}× (target ≤ 2)`)
  console.log(`start-up: (fleet list − its own work) / node -e 0: cpu ${ratio(m['fleet list'].cpu - work.cpu, node.cpu)}×, wall ${ratio(m['fleet list'].wall - work.wall, node.wall)}× (target ≤ 2)`)
  rmSync(env.FLEET_STATE_DIR, { recursive: true, force: true })
}

await startup()
