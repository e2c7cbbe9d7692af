#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (run `npm run build` after `npm ci`).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2))).catch((err) => {
  process.stderr.write(`tsrun: cannot start: ${err && err.message ? err.message : err}\n` +
    'hint: run `npm ci && npm run build` in the tsrun checkout\n');
  process.exit(125);
});
