#!/bin/sh
//bin/true; [ -z "${NODE_EXTRA_CA_CERTS-}" ] || { TSRUN_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export TSRUN_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; }; [ -z "${NODE_OPTIONS+x}" ] || { TSRUN_NODE_OPTIONS=$NODE_OPTIONS; export TSRUN_NODE_OPTIONS; unset NODE_OPTIONS; }; exec node -- "$0" "$@"
/*
 * tsrun's entry point. Run as a program (`tsrun` through npm's link, `./bin/tsrun.js`), /bin/sh
 * reads the two lines above and starts Node on this same file; to Node (`node bin/tsrun.js`)
 * they are a hashbang and a comment. The shell step exists for start-up time: Node reads
 * NODE_EXTRA_CA_CERTS eagerly (~40 ms), so it is handed on as TSRUN_EXTRA_CA_CERTS and loaded
 * only when a verified TLS connection needs it (src/util/ca.ts). NODE_OPTIONS is moved aside the
 * same way (TSRUN_NODE_OPTIONS), and `--` ends Node's options: Node 20 otherwise reads
 * `--env-file FILE` anywhere in argv (a container's env file, and the NODE_OPTIONS line in it)
 * as its own. Flags and variables meant for containers never reach Node (src/util/caller-env.ts).
 *
 * The CLI itself is dist/tsrun.cjs, one file made by `npm run build` (scripts/bundle.mjs).
 */
import { createRequire } from 'node:module';

let cli;
try {
  cli = createRequire(import.meta.url)('../dist/tsrun.cjs');
} catch (err) {
  process.stderr.write(`tsrun: cannot start: ${err && err.message ? err.message : err}\n` +
    'hint: run `npm ci && npm run build` in the tsrun checkout\n');
  process.exit(125);
}
cli.main(process.argv.slice(2));
