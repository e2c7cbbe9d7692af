#!/usr/bin/env node
// `npm run build`, second step: the CLI as one CommonJS file, dist/tsrun.cjs, which bin/tsrun.js
// loads. Why: Node 20's ES-module loader costs ~1 ms per module on this kind of machine and a
// `run` touches ~45 of them; one CommonJS file with lazily initialised modules (esbuild keeps our
// `await import()` boundaries as lazy initialisers) starts ~30 ms sooner (docs/benchmarks.md).
// The tsc output in dist/src stays what the tests import. npm packages are not bundled (they
// are loaded from node_modules as before); import.meta.url becomes the bundle's own URL, which
// src/util/project.ts walks up from to find tsrun's files.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/tsrun.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  packages: 'external',
  define: { 'import.meta.url': '__tsrunModuleUrl' },
  banner: { js: "const __tsrunModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
