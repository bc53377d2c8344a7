// npm run bench, part 0: start-up. Target (issue 16): `fleet --version` and `fleet list` start at
// most 2× `node -e 0`, not counting the command's own work.
//
// "Its own work", for list: what a bare node script doing the same list needs beyond `node -e 0` —
// the list service and the modules it imports (bundled with the same esbuild options as the CLI,
// so module loading costs alike), the libvirt binding and its connection, reading the repository's
// two example machines and asking libvirt for their domains, with an empty state dir. No oclif, no
// flag parsing, no command classes. What fleet list costs beyond that is what the CLI adds:
//   ratio = (fleet list − (bare list − node -e 0)) / node -e 0
// --version has no work of its own: fleet --version / node -e 0.
//
// Each case runs BENCH_RUNS times, interleaved (a busy moment hits every case alike). CPU time
// (user + sys, GNU time) is the steadier measure on a shared machine; its clock ticks are 10 ms,
// so the figure is the mean of the middle half of the runs. Wall time (median) is printed beside it.
import { build } from 'esbuild'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleOptions } from '../scripts/bundle.mjs'

const at = (p) => fileURLToPath(new URL(p, import.meta.url))

/** CPU and wall seconds of one run. */
function cost(argv, env) {
  const t0 = performance.now()
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', ...argv], { env: { ...process.env, ...env }, encoding: 'utf8' })
  const wall = (performance.now() - t0) / 1000
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}\n${r.stderr}`)
  const [u, sy] = r.stderr.trim().split('\n').pop().split(' ').map(Number)
  return { cpu: u + sy, wall }
}
const sorted = (xs) => [...xs].sort((a, b) => a - b)
const median = (xs) => sorted(xs)[xs.length >> 1]
const middleMean = (xs) => {
  const s = sorted(xs).slice(xs.length >> 2, xs.length - (xs.length >> 2))
  return s.reduce((a, b) => a + b, 0) / s.length
}

async function startup() {
  const RUNS = Number(process.env.BENCH_RUNS ?? 21)
  const dir = mkdtempSync(join(tmpdir(), 'fleet-bench-startup-'))
  const env = { FLEET_REPO: at('..'), FLEET_STATE_DIR: join(dir, 'state') } // the repository root is an example fleet
  // The bare list: fleet's list service, bundled as the CLI is (the file lives in dist/ so that
  // @unraid/libvirt, left outside the bundle as in the CLI, resolves from node_modules).
  writeFileSync(join(dir, 'bare-list.mjs'), `import { listVms } from ${JSON.stringify(at('../dist/services/list.js'))}
import { disconnect } from ${JSON.stringify(at('../dist/adapters/libvirt.js'))}
import { resolvePaths } from ${JSON.stringify(at('../dist/repo.js'))}
process.stdout.write(JSON.stringify(await listVms(resolvePaths({}))) + '\\n')
await disconnect()
`)
  const bare = at('../dist/bench-bare-list.mjs')
  await build({ ...bundleOptions, entryPoints: [join(dir, 'bare-list.mjs')], outfile: bare })
  const fleet = at('../bin/fleet')
  const cases = {
    'node -e 0': ['node', '-e', '0'],
    'fleet --version': ['node', fleet, '--version'],
    'list work, bare node': ['node', bare],
    'fleet list': ['node', fleet, 'list'],
  }
  const runs = Object.fromEntries(Object.keys(cases).map((k) => [k, []]))
  try {
    for (let i = 0; i < RUNS; i++) for (const [k, argv] of Object.entries(cases)) runs[k].push(cost(argv, env))
  } finally {
    rmSync(dir, { recursive: true, force: true })
    rmSync(bare, { force: true })
  }
  const m = Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, { cpu: middleMean(rs.map((r) => r.cpu)), wall: median(rs.map((r) => r.wall)) }]))
  const ms = (s) => `${(s * 1000).toFixed(0).padStart(5)} ms`
  console.log(`start-up: ${RUNS} runs of each; cpu = user + sys (mean of the middle half), wall = median`)
  for (const [k, v] of Object.entries(m)) console.log(`start-up: ${k.padEnd(22)} cpu ${ms(v.cpu)}   wall ${ms(v.wall)}`)
  const node = m['node -e 0']
  const work = { cpu: m['list work, bare node'].cpu - node.cpu, wall: m['list work, bare node'].wall - node.wall }
  console.log(`start-up: list's own work (bare node list − node -e 0): cpu ${ms(work.cpu)}   wall ${ms(work.wall)}`)
  const ratio = (x, y) => (x / y).toFixed(2)
  console.log(`start-up: fleet --version / node -e 0: cpu ${ratio(m['fleet --version'].cpu, node.cpu)}×, wall ${ratio(m['fleet --version'].wall, node.wall)}× (target ≤ 2)`)
  console.log(`start-up: (fleet list − its own work) / node -e 0: cpu ${ratio(m['fleet list'].cpu - work.cpu, node.cpu)}×, wall ${ratio(m['fleet list'].wall - work.wall, node.wall)}× (target ≤ 2)`)
}

await startup()
