// npm run build, after tsc: bundle the CLI with esbuild into dist/bundle/ — one entry per command
// and hook, plus cli.js (oclif's execute) for bin/fleet, with the shared code (oclif, fleet's
// modules, execa, fast-xml-parser …) split into chunks. Node resolves and reads a few dozen files
// for `fleet list` instead of some 250 (oclif alone is ~100 CommonJS files): start-up costs
// about half. package.json's oclif.commands points here, so the manifest, `oclif readme` and the
// in-process tests load the same command modules that users run. The tsc output in dist/ stays
// for tests and tools that import single modules.
import { build } from 'esbuild'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** esbuild's options for fleet's code; bench/startup.mjs bundles its bare-node baseline with them too. */
export const bundleOptions = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Less to parse; names kept, since error types are reported by their class name.
  minify: true,
  keepNames: true,
  // A native addon (found beside its package), and the TypeScript loaders oclif asks for only in development.
  external: ['@unraid/libvirt', 'typescript', 'ts-node', 'tsx'],
  // oclif and some of its dependencies are CommonJS: require, __dirname and __filename for them.
  banner: {
    js: [
      "import { createRequire as __fleetCreateRequire } from 'node:module'",
      "import { fileURLToPath as __fleetFileURLToPath } from 'node:url'",
      'const require = __fleetCreateRequire(import.meta.url)',
      'const __filename = __fleetFileURLToPath(import.meta.url)',
      "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'))",
    ].join(';'),
  },
  logLevel: 'warning',
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dist = fileURLToPath(new URL('../dist/', import.meta.url))
  const entries = (dir) => readdirSync(dist + dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js')).map((f) => `${dist}${dir}/${f}`)
  // Bundled code no longer sits where its module did: a path made from import.meta.url would point
  // elsewhere. Files fleet ships are found from util/package-root.ts; packages are resolved by name.
  const allowed = ['util/package-root.js', 'util/builtin.js', 'xml/serialize.js']
  const located = readdirSync(dist, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.js') && !f.startsWith('bundle/') && !allowed.includes(f) && readFileSync(dist + f, 'utf8').includes('import.meta.url'))
  if (located.length) throw new Error(`import.meta.url in ${located.join(', ')}: in the bundle it is the chunk's place, not the module's; use packageRoot() (src/util/package-root.ts)`)
  rmSync(dist + 'bundle', { recursive: true, force: true })
  await build({
    ...bundleOptions,
    entryPoints: [`${dist}cli.js`, ...entries('commands'), ...entries('hooks')],
    outdir: dist + 'bundle',
    outbase: dist,
    splitting: true, // each command loads only the chunks its own imports reach
  })
}
