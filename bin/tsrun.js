#!/bin/sh
':' //; [ -z "${NODE_EXTRA_CA_CERTS-}" ] || { TSRUN_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export TSRUN_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; }; [ -z "${NODE_OPTIONS+x}" ] || { TSRUN_NODE_OPTIONS=$NODE_OPTIONS; export TSRUN_NODE_OPTIONS; unset NODE_OPTIONS; }; [ -O /proc/1 ] || { tsrun_entry=$(readlink -f -- "$0") && [ -r "${tsrun_entry%/*}/rootless-enter.sh" ] && . "${tsrun_entry%/*}/rootless-enter.sh"; }; exec node -- "$0" "$@"
/*
 * tsrun's entry point. Run as a program (`tsrun` through npm's link, `./bin/tsrun.js`), /bin/sh
 * reads the two lines above and starts Node on this same file; to Node (`node bin/tsrun.js`)
 * they are a hashbang, a string statement (`':'`, a directive that means nothing, so the
 * 'use strict' below is still in the directive prologue) and a comment. To sh, `':' //` is the
 * `:` builtin with one argument: no program is started for it (a `//bin/true` line, as before,
 * made sh fork and exec /bin/true on every command). The shell step exists for start-up time: Node reads
 * NODE_EXTRA_CA_CERTS eagerly (~40 ms), so it is handed on as TSRUN_EXTRA_CA_CERTS and loaded
 * only when a verified TLS connection needs it (src/util/ca.ts). NODE_OPTIONS is moved aside the
 * same way (TSRUN_NODE_OPTIONS), and `--` ends Node's options: Node 20 otherwise reads
 * `--env-file FILE` anywhere in argv (a container's env file, and the NODE_OPTIONS line in it)
 * as its own. Flags and variables meant for containers never reach Node (src/util/caller-env.ts).
 * For an unprivileged user (/proc/1 is not theirs) the shell first tries bin/rootless-enter.sh:
 * when the user's rootless namespace is up and the command surely runs in it, Node is started
 * there directly through nsenter (one Node start instead of two; that file says when).
 *
 * The CLI itself is dist/tsrun.cjs, one file made by `npm run build` (scripts/bundle.mjs), loaded
 * with the V8 code cache the build made beside it (dist/tsrun.cjs.cache) when that cache is for
 * this very file: parsing the bundle is otherwise a quarter of a listing command's time. This
 * file is CommonJS (bin/package.json says so): an ES-module entry costs Node ~8 ms of CPU more.
 */
'use strict';
const { closeSync, fstatSync, openSync, readFileSync } = require('node:fs');
const path = require('node:path');
const { Script } = require('node:vm');

function load() {
  const file = path.join(__dirname, '..', 'dist', 'tsrun.cjs');
  let cache;
  try {
    cache = readFileSync(`${file}.cache`);
  } catch {
    return require(file);
  }
  const fd = openSync(file, 'r');
  const nl = cache.indexOf(10);
  let source;
  let fits;
  try {
    const st = fstatSync(fd);
    fits = cache.subarray(0, nl).toString() === `ascii ${st.size}:${Math.trunc(st.mtimeMs)}`;
    // The build wrote that file in ASCII (scripts/bundle.mjs): latin1 reads it ~3 ms sooner.
    source = readFileSync(fd, fits ? 'latin1' : 'utf8');
  } finally {
    closeSync(fd);
  }
  // Node's CommonJS wrapper plus the bundle's import() (scripts/bundle.mjs says why).
  const script = new Script(
    `(function (exports, require, module, __filename, __dirname, __tsrunImport) { ${source}\n});`,
    { filename: file, cachedData: fits ? cache.subarray(nl + 1) : undefined },
  );
  const mod = { exports: {} };
  const req = require('node:module').createRequire(file);
  script.runInThisContext().call(mod.exports, mod.exports, req, mod, file, path.dirname(file), (s) => import(s));
  return mod.exports;
}

let cli;
try {
  cli = load();
} catch (err) {
  process.stderr.write(`tsrun: cannot start: ${err && err.message ? err.message : err}\n` +
    'hint: run `npm ci && npm run build` in the tsrun checkout\n');
  process.exit(125);
}
cli.main(process.argv.slice(2));
